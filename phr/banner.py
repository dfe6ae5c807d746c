"""What ``make run`` prints before serving: where to click and how to sign in."""

from __future__ import annotations

import argparse
import json

from phr.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", default=8000, type=int)
    args = ap.parse_args()
    base = f"http://{args.host}:{args.port}"
    creds_path = get_settings().data_dir / "demo-credentials.json"
    print()
    print("Tsukuba PHR is starting")
    print(f"  home page              {base}/")
    print(f"  resident web app       {base}/me/signin  (demo mode: pick a demo card)")
    print(f"  feeling unwell?        {base}/triage  (self-triage, no sign-in needed)")
    print(f"  paramedic tablet       {base}/ems  (staff sign-in; see below)")
    print(f"  shelter desk           {base}/modules/shelter/  (staff: demo-shelter-staff.json)")
    print(f"  home-care station      {base}/homecare/station  (staff: see homecare-staff.json)")
    print(f"  FHIR API               {base}/fhir  (CapabilityStatement: {base}/fhir/metadata)")
    print(f"  API docs (OpenAPI)     {base}/docs")
    print(f"  SMART configuration    {base}/.well-known/smart-configuration")
    print(f"  OAuth2 token endpoint  {base}/oauth/token")
    if creds_path.exists():
        creds = json.loads(creds_path.read_text())
        print(f"\nDemo credentials ({creds_path}):")
        for c in creds.get("clients", [])[:12]:
            print(
                f"  {c['kind']:<14} {c['organization']:<28} client_id={c['client_id']}  "
                f"client_secret={c['client_secret']}"
            )
        examples = creds.get("example_patients", [])[:3]
        if examples:
            print("\nResidents worth signing in as (demo cards on the sign-in page):")
            for p in examples:
                print(f"  {p['name']}  born {p['birth_date']}")
        print(
            "\nA paramedic for the tablet (prints a password and a TOTP secret for any"
            " authenticator app):\n"
            "  .venv/bin/phr staff add tsukuba-fire medic1 --role paramedic --name 'Demo Medic'"
        )
        first = creds.get("clients", [{}])[0]
        if first:
            print("\nTry it:")
            print(
                f"  TOKEN=$(curl -s -u {first['client_id']}:{first['client_secret']} "
                f"-d grant_type=client_credentials {base}/oauth/token | "
                "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
            )
            print(f"  curl -H \"Authorization: Bearer $TOKEN\" '{base}/fhir/Patient?_count=5'")
    print()


if __name__ == "__main__":
    main()
