// node's `http` server and client, every body checked by sha256.
//
//   node nodehttp.js server PORT
//       Listens on [::]:PORT (dual stack).  GET /bytes/N answers N random bytes with header
//       x-sha256 (of what it sent); POST/PUT answers JSON {"sha256":..., "len":..., "peer":...} for the body
//       it received.  Prints "listening PORT" when ready and "req METHOD URL PEER" per request.
//
//   node nodehttp.js client HOST PORT [GETS] [POSTS] [TIMEOUT_S]
//       Makes GETS downloads and POSTS uploads (sizes from 0 to ~2 MB), 4 at a time over a keep-alive
//       agent, checks every body against its sha256 and length.  Prints one JSON line {"ok","failed",
//       "bytes","errors","peers"} and exits 0 only if all requests were correct (2 on timeout).
'use strict';
const http = require('http');
const crypto = require('crypto');

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const SIZES = [0, 1, 1000, 65536, 65537, 300000, 1048576, 2000003];

function server(port) {
  const srv = http.createServer((req, res) => {
    let peer = req.socket.remoteAddress || '?';
    if (peer.startsWith('::ffff:')) peer = peer.slice(7);
    console.log(`req ${req.method} ${req.url} ${peer}`);
    const m = /^\/bytes\/(\d+)$/.exec(req.url);
    if (req.method === 'GET' && m) {
      const body = crypto.randomBytes(Number(m[1]));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length,
        'x-sha256': sha(body) });
      res.end(body);
      return;
    }
    if (req.method === 'POST' || req.method === 'PUT') {
      const h = crypto.createHash('sha256');
      let len = 0;
      req.on('data', (c) => { h.update(c); len += c.length; });
      req.on('end', () => {
        const out = JSON.stringify({ sha256: h.digest('hex'), len, peer });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  srv.keepAliveTimeout = 30000;
  srv.listen({ port, host: '::', ipv6Only: false }, () => console.log(`listening ${port}`));
}

function request(agent, host, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent,
      headers: body ? { 'content-length': body.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) {
      // write in pieces, so the request streams
      for (let off = 0; off < body.length; off += 100000) req.write(body.subarray(off, off + 100000));
    }
    req.end();
  });
}

async function client(host, port, gets, posts, timeout) {
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ ok: 0, failed: gets + posts, errors: [`timed out after ${timeout}s`] }));
    process.exit(2);
  }, timeout * 1000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const res = { ok: 0, failed: 0, bytes: 0, errors: [], peers: [] };
  const jobs = [];
  for (let i = 0; i < gets; i++) jobs.push(['GET', SIZES[i % SIZES.length]]);
  for (let i = 0; i < posts; i++) jobs.push(['POST', SIZES[(i * 3) % SIZES.length]]);
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const [method, size] = jobs[next++];
      try {
        if (method === 'GET') {
          const r = await request(agent, host, port, 'GET', `/bytes/${size}`);
          if (r.status !== 200) throw new Error(`GET ${size}: status ${r.status}`);
          if (r.body.length !== size) throw new Error(`GET ${size}: got ${r.body.length} bytes`);
          if (sha(r.body) !== r.headers['x-sha256']) throw new Error(`GET ${size}: sha256 differs`);
        } else {
          const body = crypto.randomBytes(size);
          const r = await request(agent, host, port, 'POST', '/upload', body);
          if (r.status !== 200) throw new Error(`POST ${size}: status ${r.status}`);
          const j = JSON.parse(r.body.toString());
          if (j.len !== size || j.sha256 !== sha(body)) throw new Error(`POST ${size}: server got ${j.len} bytes, other sha256`);
          if (!res.peers.includes(j.peer)) res.peers.push(j.peer);
        }
        res.ok++;
        res.bytes += size;
      } catch (e) {
        res.failed++;
        res.errors.push(String(e && e.message ? e.message : e));
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  clearTimeout(timer);
  agent.destroy();
  console.log(JSON.stringify(res));
  process.exit(res.failed === 0 && res.ok === gets + posts ? 0 : 1);
}

const [mode, a1, a2, a3, a4, a5] = process.argv.slice(2);
if (mode === 'server') server(Number(a1));
else if (mode === 'client') client(a1, Number(a2), Number(a3 || 24), Number(a4 || 16), Number(a5 || 60));
else { console.error('usage: nodehttp.js server PORT | client HOST PORT [GETS] [POSTS] [TIMEOUT_S]'); process.exit(64); }
