"""Stream processing: the faust worker, its per-patient processing and its sinks."""
