"""Raw card numbers never get past decoding: dead-lettered, masked, whatever field they hide in."""

from __future__ import annotations

import pytest

from events.card_guard import CARD_NUMBER_REFUSED, contains_card_number, mask_card_numbers
from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Sale
from events.topics import Topic

SALE = (
    b'{"event_id":"e1","type":"sale","ts":"2026-11-22T01:23:45.123Z","schema_version":1,'
    b'"store_id":"S1","register_id":"R1","cashier_id":"C1","txn_id":"T1","currency":"USD",'
    b'"items":[{"sku":"A","qty":1,"unit_price":9.5}],"total":9.5,'
    b'"payment":{"method":"card","card_token":"TOKEN","entry_mode":"chip"}}'
)


def _decode(raw: bytes) -> object:
    return decode(Topic.POS, raw, source_topic="omni.pos", partition=0, offset=3)


PANS = [b"4111111111111111", b"4111 1111 1111 1111", b"5500-0000-0000-0004", b"378282246310005"]


@pytest.mark.parametrize("pan", PANS)
def test_sale_with_a_card_number_as_token_is_dead_lettered_masked(pan: bytes) -> None:
    letter = _decode(SALE.replace(b"TOKEN", pan))
    assert isinstance(letter, DeadLetter)
    assert letter.error == CARD_NUMBER_REFUSED
    digits = pan.replace(b" ", b"").replace(b"-", b"").decode()
    assert digits not in letter.raw.replace(" ", "").replace("-", "")
    assert "****" in letter.raw


def test_card_number_in_an_unknown_extra_field_is_refused_too() -> None:
    letter = _decode(SALE.replace(b'"total":9.5,', b'"total":9.5,"note":"paid with 4111111111111111",'))
    assert isinstance(letter, DeadLetter) and letter.error == CARD_NUMBER_REFUSED


def test_tokens_timestamps_prices_and_luhn_invalid_numbers_pass() -> None:
    assert isinstance(_decode(SALE.replace(b"TOKEN", b"tok_4f3a9b2c1d0e5f67")), Sale)
    assert isinstance(_decode(SALE.replace(b"TOKEN", b"4111111111111112")), Sale)  # fails Luhn
    assert not contains_card_number(b'{"total":1234567.89,"ts":"2026-11-22T01:23:45.123456Z","id":"U-000001"}')


def test_masking_keeps_everything_but_the_card_digits() -> None:
    assert mask_card_numbers(b'{"qty":2,"pan":"4111111111111111"}') == b'{"qty":2,"pan":"****************"}'


def test_date_sequence_ids_grouped_unlike_cards_pass() -> None:
    # `20261122-10003` is 13 digits and Luhn-valid once joined, but not grouped as a card.
    assert not contains_card_number(b'{"event_id":"ev-20261122-10003","txn_id":"T-20261122-10028"}')
    assert contains_card_number(b'{"note":"3782 822463 10005"}')  # Amex 4-6-5
