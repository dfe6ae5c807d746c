"""Envelope encryption of TOTP secrets: sealed per value, bound to its account, keyed."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.staff import crypto
from phr.settings import ConfigurationError, Settings


@pytest.fixture
def keys() -> crypto.StaticKeyProvider:
    return crypto.StaticKeyProvider(secrets.token_bytes(32))


@pytest.fixture
def fresh_key_cache() -> Iterator[None]:
    crypto.reset_key_cache()
    yield
    crypto.reset_key_cache()


class TestSeal:
    def test_a_sealed_value_opens_with_the_same_key_and_context(
        self, keys: crypto.StaticKeyProvider
    ) -> None:
        sealed = crypto.seal(b"seed", aad=b"staff:1", keys=keys)
        assert sealed.startswith("v1.")
        assert crypto.open_sealed(sealed, aad=b"staff:1", keys=keys) == b"seed"

    def test_the_same_value_seals_differently_each_time(
        self, keys: crypto.StaticKeyProvider
    ) -> None:
        assert crypto.seal(b"seed", aad=b"a", keys=keys) != crypto.seal(
            b"seed", aad=b"a", keys=keys
        )

    def test_a_value_moved_to_another_account_does_not_open(
        self, keys: crypto.StaticKeyProvider
    ) -> None:
        sealed = crypto.seal(b"seed", aad=b"staff:1", keys=keys)
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(sealed, aad=b"staff:2", keys=keys)

    def test_a_tampered_value_does_not_open(self, keys: crypto.StaticKeyProvider) -> None:
        version, kid, wrapped, body = crypto.seal(b"seed", aad=b"a", keys=keys).split(".")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(".".join((version, kid, wrapped, flipped)), aad=b"a", keys=keys)

    def test_another_master_key_cannot_open_it_but_a_kept_previous_one_can(
        self, keys: crypto.StaticKeyProvider
    ) -> None:
        sealed = crypto.seal(b"seed", aad=b"a", keys=keys)
        other = crypto.StaticKeyProvider(secrets.token_bytes(32))
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(sealed, aad=b"a", keys=other)
        rotated = crypto.StaticKeyProvider(secrets.token_bytes(32), previous=(keys.key,))
        assert crypto.open_sealed(sealed, aad=b"a", keys=rotated) == b"seed"


class TestMasterKey:
    def test_development_generates_a_private_key_file_once(
        self, tmp_path: Path, fresh_key_cache: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(crypto.TOTP_KEY_ENV, raising=False)
        settings = Settings(data_dir=tmp_path, env="development")
        first = crypto.totp_key_provider(settings)
        path = settings.keys_dir / crypto.TOTP_KEY_FILE
        assert path.stat().st_mode & 0o077 == 0
        crypto.reset_key_cache()
        assert crypto.totp_key_provider(settings).key == first.key

    def test_production_refuses_to_run_without_the_key_in_the_environment(
        self, tmp_path: Path, fresh_key_cache: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(crypto.TOTP_KEY_ENV, raising=False)
        with pytest.raises(ConfigurationError, match=crypto.TOTP_KEY_ENV):
            crypto.totp_key_provider(Settings(data_dir=tmp_path, env="production"))

    def test_production_uses_the_key_from_the_environment(
        self, tmp_path: Path, fresh_key_cache: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = secrets.token_bytes(32)
        monkeypatch.setenv(crypto.TOTP_KEY_ENV, base64.b64encode(key).decode())
        provider = crypto.totp_key_provider(Settings(data_dir=tmp_path, env="production"))
        assert provider.key == key
        assert not (tmp_path / "keys" / crypto.TOTP_KEY_FILE).exists()

    def test_a_key_of_the_wrong_length_is_a_configuration_error(
        self, tmp_path: Path, fresh_key_cache: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(crypto.TOTP_KEY_ENV, base64.b64encode(b"short").decode())
        with pytest.raises(ConfigurationError):
            crypto.totp_key_provider(Settings(data_dir=tmp_path, env="production"))
