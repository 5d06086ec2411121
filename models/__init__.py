"""Pure computation (numpy/scipy/torch): signal stages, detectors, models.

Imports nothing from ``streams``, ``simulators`` or ``cardiowatch``.
"""
