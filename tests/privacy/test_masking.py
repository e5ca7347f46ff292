"""Personal data is masked where samples are stored (GX results) and in masked forms for messages."""

from __future__ import annotations

from pingan.core.masking import mask_all, mask_personal, mask_sample
from pingan.quality.results_store import summary_of


def test_mask_personal_keeps_the_shape_not_the_number():
    assert mask_personal("call 13912345678 now") == "call 139****5678 now"
    assert mask_personal("310118198506150019") == "310118********0019"
    assert mask_personal("310118198506150019;13812345678") == "310118********0019;138****5678"
    assert mask_personal("order 20250301000031") == "order 20250301000031"  # 20 digits: not an ID or phone
    assert mask_all("张三") == "**"


class _FakeGxResult:
    """Only the to_json_dict() shape summary_of reads: a real GX result's dictionary."""

    def __init__(self, data: dict):
        self._data = data

    def to_json_dict(self) -> dict:
        return self._data


def test_stored_gx_samples_hold_no_raw_phone_or_id():
    data = {
        "results": [
            {
                "expectation_config": {
                    "type": "expect_column_values_to_match_regex",
                    "kwargs": {"column": "caller_phone"},
                },
                "result": {
                    "unexpected_count": 2,
                    "partial_unexpected_list": ["1391234567", "13912345678x", "310118198506150019"],
                    "partial_unexpected_counts": [{"value": "13912345678", "count": 1}],
                    "unexpected_list": ["13912345678"],
                },
            }
        ]
    }
    stored = summary_of(_FakeGxResult(data))
    text = repr(stored)
    assert "13912345678" not in text and "310118198506150019" not in text
    assert "unexpected_list" not in stored["results"][0]["result"]
    assert stored["results"][0]["result"]["unexpected_count"] == 2
    assert mask_sample({"v": ["13912345678", 3]}) == {"v": ["139****5678", 3]}
