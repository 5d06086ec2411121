"""Settings: environment variables, types, documentation, broker compatibility."""

from __future__ import annotations

import dataclasses

import pytest

from cardiowatch.settings import Settings
from streams.app import faust_config


def test_environment_variables_are_read_and_typed() -> None:
    s = Settings.from_env(
        {"CARDIOWATCH_PARTITIONS": "8", "CARDIOWATCH_CHUNK_S": "0.5", "CARDIOWATCH_TOPIC_ECG": "x"}
    )
    assert s.partitions == 8
    assert s.chunk_s == 0.5
    assert s.topic_ecg == "x"


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="CARDIOWATCH_PARTITIONS"):
        Settings.from_env({"CARDIOWATCH_PARTITIONS": "many"})


def test_every_field_is_documented() -> None:
    docs = Settings.documentation()
    assert len(docs) == len(dataclasses.fields(Settings))
    assert all(env.startswith("CARDIOWATCH_") and doc for env, _, doc in docs)


def test_compatibility_mode_follows_the_broker() -> None:
    assert Settings.from_env({}).tansu_compat  # embedded broker
    assert not Settings.from_env({"CARDIOWATCH_KAFKA_URL": "kafka:9092"}).tansu_compat
    forced = {"CARDIOWATCH_KAFKA_URL": "k:9092", "CARDIOWATCH_BROKER_COMPAT": "tansu"}
    assert Settings.from_env(forced).tansu_compat


def test_tansu_mode_writes_one_record_per_producer_batch() -> None:
    tansu = faust_config(Settings.from_env({}, kafka_url="127.0.0.1:1", broker_compat="tansu"))
    kafka = faust_config(Settings.from_env({}, kafka_url="127.0.0.1:1", broker_compat="kafka"))
    assert tansu["producer_max_batch_size"] == 1
    assert "producer_max_batch_size" not in kafka
    assert tansu["processing_guarantee"] == kafka["processing_guarantee"] == "at_least_once"
