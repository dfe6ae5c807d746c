"""RFC 6238 TOTP: the published test vectors, the drift window, replay, provisioning URIs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from consent.staff import totp

RFC_SECRET = b"12345678901234567890"  # RFC 6238 Appendix B, SHA-1 seed


class TestRfc6238Vectors:
    @pytest.mark.parametrize(
        ("at", "expected"),
        [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ],
    )
    def test_the_sha1_vectors_of_appendix_b_give_the_published_8_digit_values(
        self, at: int, expected: str
    ) -> None:
        assert totp.totp(RFC_SECRET, at, digits=8) == expected

    def test_six_digits_is_the_default_and_the_last_six_of_the_eight(self) -> None:
        assert totp.totp(RFC_SECRET, 59) == "287082"

    def test_an_8_digit_code_verifies_at_its_own_step(self) -> None:
        assert totp.verify(RFC_SECRET, "14050471", at=1111111111, digits=8) == 1111111111 // 30


class TestVerify:
    secret = b"\x01" * 20
    at = 1_700_000_000.0

    def test_a_code_of_the_previous_or_next_step_is_accepted_for_clock_drift(self) -> None:
        now = totp.time_step(self.at)
        before = totp.totp(self.secret, self.at - 30)
        after = totp.totp(self.secret, self.at + 30)
        assert totp.verify(self.secret, before, at=self.at) == now - 1
        assert totp.verify(self.secret, after, at=self.at) == now + 1

    def test_a_code_two_steps_away_is_refused(self) -> None:
        assert totp.verify(self.secret, totp.totp(self.secret, self.at - 60), at=self.at) is None
        assert totp.verify(self.secret, totp.totp(self.secret, self.at + 60), at=self.at) is None

    def test_a_code_already_used_is_refused_within_its_window(self) -> None:
        code = totp.totp(self.secret, self.at)
        step = totp.verify(self.secret, code, at=self.at)
        assert step is not None
        assert totp.verify(self.secret, code, at=self.at, last_step=step) is None
        assert totp.verify(self.secret, code, at=self.at + 29, last_step=step) is None

    def test_after_a_newer_code_was_used_an_older_one_is_refused(self) -> None:
        newer = totp.verify(self.secret, totp.totp(self.secret, self.at + 30), at=self.at)
        older = totp.totp(self.secret, self.at)
        assert totp.verify(self.secret, older, at=self.at, last_step=newer) is None

    @pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６"])
    def test_malformed_codes_are_refused(self, code: str) -> None:
        assert totp.verify(self.secret, code, at=self.at) is None

    def test_spaces_typed_inside_a_code_are_ignored(self) -> None:
        code = totp.totp(self.secret, self.at)
        assert totp.verify(self.secret, f"{code[:3]} {code[3:]}", at=self.at) is not None


class TestProvisioningUri:
    def test_the_uri_carries_the_base32_secret_issuer_and_parameters(self) -> None:
        uri = totp.provisioning_uri(
            RFC_SECRET, account="sato@tsukuba-hospital", issuer="Tsukuba PHR"
        )
        parts = urlsplit(uri)
        assert parts.scheme == "otpauth"
        assert parts.netloc == "totp"
        assert parts.path == "/Tsukuba%20PHR:sato@tsukuba-hospital"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query == {
            "secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "issuer": "Tsukuba PHR",
            "algorithm": "SHA1",
            "digits": "6",
            "period": "30",
        }

    def test_generated_secrets_are_160_random_bits(self) -> None:
        a, b = totp.generate_secret(), totp.generate_secret()
        assert len(a) == 20
        assert a != b
