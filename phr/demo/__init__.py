"""The synthetic demo city: ``phr demo load`` (see :mod:`phr.demo.loader`).

- :mod:`phr.demo.people` — residents: names, addresses, My Numbers, insurance history;
- :mod:`phr.demo.clinical` — their health stories (diseases, visits, prescriptions,
  measurements, checkups, vaccinations, disability certificates);
- :mod:`phr.demo.drugs` — real medicine codes from the national drug price list;
- :mod:`phr.demo.bundles` / :mod:`phr.demo.files` — the clinics' FHIR Bundles and the
  cities' and insurers' CSV files made from those stories;
- :mod:`phr.demo.orgs` — the organisations and their OAuth2 clients.
"""
