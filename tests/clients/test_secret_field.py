"""SecretField: a credential attribute that the instance only holds as a SecretStr."""

from __future__ import annotations

from pydantic import SecretStr

from rftjudge.clients._secrets import SecretField


class Holder:
    key = SecretField()

    def __init__(self, key: str | None) -> None:
        self.key = key


def test_reads_back_the_value_but_stores_a_secret() -> None:
    holder = Holder("sk-123")
    assert holder.key == "sk-123"
    assert "sk-123" not in repr(vars(holder))
    assert isinstance(vars(holder)["_key_secret"], SecretStr)
    assert isinstance(Holder.key, SecretField)


def test_empty_and_none_mean_no_key() -> None:
    assert Holder(None).key is None
    assert Holder("").key is None
    holder = Holder("x")
    holder.key = None
    assert holder.key is None
