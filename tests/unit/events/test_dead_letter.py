"""`events.dead_letter`: the `omni.dlq` record keeps where a bad payload came from and its first 4 KiB."""

from __future__ import annotations

import base64

from events.dead_letter import RAW_KEPT_BYTES, DeadLetter


def test_dead_letter_of_names_its_source_position() -> None:
    result = DeadLetter.of("omni.inventory", 2, 99, "Empty payload", b"")

    assert result.dlq_id == "omni.inventory/2/99"
    assert (result.source_topic, result.partition, result.offset, result.error) == (
        "omni.inventory",
        2,
        99,
        "Empty payload",
    )


def test_dead_letter_of_accepts_no_payload() -> None:
    result = DeadLetter.of("omni.inventory", 0, 1, "Empty payload", None)

    assert (result.raw, result.raw_encoding) == ("", "utf-8")


def test_dead_letter_keeps_the_first_4_kib_of_a_utf8_payload() -> None:
    raw = b"a" * 10_000

    result = DeadLetter.of("omni.pos", 0, 1, "bad", raw)

    assert (result.raw, result.raw_encoding) == ("a" * RAW_KEPT_BYTES, "utf-8")


def test_dead_letter_keeps_the_first_4_kib_of_a_non_utf8_payload_as_base64() -> None:
    raw = bytes(range(256)) * 40

    result = DeadLetter.of("omni.pos", 0, 1, "bad", raw)

    assert result.raw_encoding == "base64"
    assert base64.b64decode(result.raw) == raw[:RAW_KEPT_BYTES]


def test_dead_letter_keeps_a_utf8_payload_as_text_when_4_kib_cuts_a_character() -> None:
    # CONTRACT.md: `raw` is base64 only "when not UTF-8"; this payload is UTF-8, and the 4 KiB cut
    # falls inside the 2-byte "é" (4095 ASCII bytes, then "é"...).
    raw = ("x" * 4095 + "é" * 100).encode()

    result = DeadLetter.of("omni.catalog", 0, 1, "bad", raw)

    assert result.raw_encoding == "utf-8"
    assert raw.decode().startswith(result.raw)
    assert len(result.raw.encode()) <= RAW_KEPT_BYTES
    assert len(result.raw) >= 4095


def test_dead_letter_keeps_multibyte_text_that_fits_in_4_kib() -> None:
    raw = '{"name": "Crème brûlée ☕"}'.encode()

    result = DeadLetter.of("omni.catalog", 0, 1, "bad", raw)

    assert (result.raw, result.raw_encoding) == ('{"name": "Crème brûlée ☕"}', "utf-8")


def test_dead_letter_reason_is_the_class_of_its_error_and_error_keeps_the_message() -> None:
    result = DeadLetter.of("omni.pos", 0, 1, "Expected `int` >= 1 - at `$.items[0].qty`", b"{}")

    assert result.reason == "invalid_field"
    assert result.error == "Expected `int` >= 1 - at `$.items[0].qty`"


def test_dead_letter_reason_of_an_unknown_message_is_refused_not_the_message() -> None:
    result = DeadLetter.of("omni.pos", 0, 1, "x" * 500, b"{}")

    assert result.reason == "refused"
