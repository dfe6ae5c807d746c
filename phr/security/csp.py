"""Content-Security-Policy for small server-rendered pages that carry their own
``<style>`` block (the OpenID Connect screens, the PIA register): the block is allowed by
its hash, so the policy needs no ``'unsafe-inline'`` and an injected style or script
cannot run."""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["inline_style_policy"]

_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def inline_style_policy(html: str, *, extra: str = "") -> str:
    """``default-src 'none'``, the page's own style blocks by hash, no framing."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
            for m in _STYLE.findall(html)
        }
    )
    style = f"; style-src {' '.join(hashes)}" if hashes else ""
    return f"default-src 'none'{style}; frame-ancestors 'none'; base-uri 'none'{extra}"
