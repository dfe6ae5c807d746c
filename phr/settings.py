"""Settings from the environment (prefix ``PHR_``).

Defaults work on a fresh machine: a SQLite file and generated development keys under
``PHR_DATA_DIR`` (``var/``). In production (``PHR_ENV=production``) the process refuses to
start unless the keys and the database are given explicitly.
"""

from __future__ import annotations

import contextlib
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """The deployment is misconfigured; the process must not start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHR_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Keyed hash for My Number linking. In production it must come from the environment
    # (or a secret store feeding it); in development a random key is kept in data_dir.
    mynumber_hmac_key: str | None = Field(default=None, repr=False)
    # PEM private key that signs access tokens; generated in development.
    jwt_private_key_file: Path | None = None
    # Master key (base64, 32 bytes) wrapping the data keys of staff TOTP secrets.
    totp_encryption_key: str | None = Field(default=None, repr=False)
    access_token_ttl_seconds: int = 300
    # JPKI (公的個人認証) trust anchor and revocation list; a demo CA in development.
    jpki_ca_file: Path | None = None
    jpki_crl_file: Path | None = None
    # Ed25519 key that seals the access log's hash chain (generated in development).
    audit_seal_key_file: Path | None = None
    # Seconds between rounds of the access-log chainer in each server process (ADR 0004);
    # 0 turns the thread off (then run `phr audit chain` from cron instead).
    audit_chain_interval: float = 1.0
    max_bundle_entries: int = 20_000
    max_request_bytes: int = 64 * 1024 * 1024
    # Request limits of phr.security.middleware (docs/security.md): bodies of the routes
    # outside /fhir, the deepest JSON nesting accepted anywhere, and HSTS under https.
    max_api_request_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 100
    hsts_max_age: int = 31_536_000
    # Failed sign-ins and identification lookups (phr.security.limiter): how many failures
    # per account and per client address within the window before answers are 429.
    signin_failures_per_account: int = 10
    signin_failures_per_address: int = 50
    signin_window_seconds: int = 900
    lookups_per_actor: int = 60
    lookup_window_seconds: int = 600
    default_page_size: int = 50
    max_page_size: int = 1000
    demo_mode: bool = True
    # Consent engine
    emergency_episode_hours: int = 24
    # The life-protection exception (APPI art. 27(1)(ii)) for an unconscious patient without
    # emergency pre-consent: off unless the deployment decides otherwise.
    life_protection_exception: bool = False
    break_glass_minutes: int = 120
    # Biometric identification (docs/biometrics.md): master key (base64, 32 bytes) sealing
    # face templates and reference photos (generated in development); the cosine-similarity
    # threshold calibrated on the ORL faces with the dlib ResNet extractor (FMR 1e-4, see
    # docs/biometrics-face-eval.json); searches allowed per actor per minute.
    biometric_encryption_key: str | None = Field(default=None, repr=False)
    biometric_match_threshold: float = 0.943
    biometric_searches_per_minute: int = 12
    # Load the face gallery into each server process at start-up, in the background (not
    # under PHR_ENV=test), so that the first paramedic's search does not wait for it.
    biometric_warm_up: bool = True
    # Bulk export ($export): 0 turns the export thread of each process off (then run
    # `phr bulk run`); any other value runs one. The master key (base64, 32 bytes) sealing
    # export files at rest is required in production.
    bulk_workers: int = 1
    bulk_encryption_key: str | None = Field(default=None, repr=False)
    # Finished exports (files and job) are deleted this many hours after they finished
    # (the status answer's Expires header says when); `phr bulk purge` does it from cron.
    bulk_retention_hours: float = Field(default=24.0, gt=0)
    # Research extracts: master key (base64, 32 bytes) of the keyed pseudonyms (HMAC).
    research_pseudonym_key: str | None = Field(default=None, repr=False)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'phr.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # filesystems without modes
            self.keys_dir.chmod(0o700)

    def check_production(self) -> None:
        """Refuse to run in production with development defaults."""
        if self.env != "production":
            return
        missing = []
        if not self.database_url:
            missing.append("PHR_DATABASE_URL")
        if not self.mynumber_hmac_key:
            missing.append("PHR_MYNUMBER_HMAC_KEY")
        if not self.jwt_private_key_file:
            missing.append("PHR_JWT_PRIVATE_KEY_FILE")
        if not self.totp_encryption_key:
            missing.append("PHR_TOTP_ENCRYPTION_KEY")
        if not self.jpki_ca_file:
            missing.append("PHR_JPKI_CA_FILE")
        if not self.jpki_crl_file:
            missing.append("PHR_JPKI_CRL_FILE")
        if not self.audit_seal_key_file:
            missing.append("PHR_AUDIT_SEAL_KEY_FILE")
        if not self.biometric_encryption_key:
            missing.append("PHR_BIOMETRIC_ENCRYPTION_KEY")
        if self.demo_mode:
            missing.append("PHR_DEMO_MODE=false")
        if missing:
            raise ConfigurationError(
                "production mode needs explicit configuration: " + ", ".join(missing)
            )

    def mynumber_key(self) -> bytes:
        """The HMAC key for My Number hashing (generated once in development)."""
        if self.mynumber_hmac_key:
            return self.mynumber_hmac_key.encode()
        if self.env == "production":
            raise ConfigurationError("PHR_MYNUMBER_HMAC_KEY is required in production")
        self.ensure_dirs()
        path = self.keys_dir / "mynumber-hmac.key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
