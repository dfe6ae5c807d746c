"""Another server process, for the cross-process deletion test: reads probe vectors (JSON,
one a line) on stdin and answers the candidates' resident ids, one JSON list a line."""

from __future__ import annotations

import json
import sys

from consent.actors import Actor
from phr.biometrics import service
from phr.db import make_engine, set_engine, transaction

EMS = Actor(
    kind="organization", client_id="ems-w", organization_id="ems-1", organization_kind="ems"
)


def main() -> None:
    set_engine(make_engine(url=sys.argv[1]))
    for line in sys.stdin:
        with transaction() as session:
            found = service.identify(session, EMS, json.loads(line))
        print(json.dumps([c.resident_id for c in found]), flush=True)


if __name__ == "__main__":
    main()
