"""``/api/v1/patients``: the patients in the token's scope with their latest vitals."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path

from cardiowatch.api.auth import not_found
from cardiowatch.api.deps import CurrentToken, State
from cardiowatch.api.models import PatientList, PatientOut, VitalsOut
from cardiowatch.schemas import SchemaError, Vitals

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/patients", tags=["patients"])
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
PatientId = Annotated[str, Path(pattern=PATIENT_ID_PATTERN, description="Patient id.")]


def _vitals(raw: bytes | None) -> VitalsOut | None:
    if raw is None:
        return None
    try:
        return VitalsOut.of(Vitals.decode(raw))
    except SchemaError as exc:
        log.warning("unreadable vitals in Redis (%s)", exc.reason)
        return None


async def _read(state: State, patient_ids: list[str]) -> list[PatientOut]:
    pipe = state.redis.pipeline(transaction=False)
    for pid in patient_ids:
        pipe.hget(state.keys.vitals(pid), "json")
    raws = await pipe.execute() if patient_ids else []
    return [
        PatientOut(patient_id=p, vitals=_vitals(r)) for p, r in zip(patient_ids, raws, strict=True)
    ]


@router.get("", response_model=PatientList, summary="Patients in scope with their latest vitals")
async def list_patients(state: State, token: CurrentToken) -> PatientList:
    """Every patient the worker has seen that the token may see, sorted by id."""
    token.require("read")
    scope = await state.tokens.scope(token)
    known = {m.decode() for m in await state.redis.smembers(state.keys.patients)}
    return PatientList(patients=await _read(state, scope.filter(known)))


@router.get(
    "/{patient_id}",
    response_model=PatientOut,
    responses={404: {"description": "No such patient, or not in the token's scope."}},
    summary="One patient with the latest vitals",
)
async def get_patient(state: State, token: CurrentToken, patient_id: PatientId) -> PatientOut:
    """A patient in scope; a patient outside the scope is answered as one that does not exist."""
    token.require("read")
    scope = await state.tokens.scope(token)
    exists = bool(await state.redis.sismember(state.keys.patients, patient_id))
    if not (exists and patient_id in scope):
        raise not_found()
    return (await _read(state, [patient_id]))[0]
