// nodeparts.js: pieces of Node.js (its own libuv) that make their own system calls, for tests/test_e2e_node.py.
//
//   node nodeparts.js unixafter DIR          a TCP server closed, then a unix-socket server made after it
//   node nodeparts.js dgram N HOST PORT      N datagrams of 1 KiB to HOST:PORT (which never reads) from an
//                                            unconnected socket: every send callback must come
//   node nodeparts.js udpecho N HOST PORT    N datagrams to an echo at HOST:PORT from an unconnected socket,
//                                            each answer's sender checked
//   node nodeparts.js fork PORT              a TCP server on 0.0.0.0:PORT, its handle sent to a forked child,
//                                            which answers each connection with "child <pid>\n"
//
// Each prints one line "ok ..." or "fail ..." and exits 0 or 1; a watchdog ends it after 30 s.
'use strict';
const net = require('net');
const dgram = require('dgram');
const path = require('path');
const { fork } = require('child_process');

const [cmd, ...args] = process.argv.slice(2);
const watchdog = setTimeout(() => done(false, 'timeout'), 30000);

function done(ok, what) {
  console.log(`${ok ? 'ok' : 'fail'} ${what}`);
  process.exit(ok ? 0 : 1);
}

function unixafter(dir) {
  const tcp = net.createServer();
  tcp.listen(0, '127.0.0.1', () => {
    tcp.close(() => {
      const p = path.join(dir, `node-${process.pid}.sock`);
      const srv = net.createServer((c) => c.end('unix\n'));
      srv.on('error', (e) => done(false, `listen ${e.code}`));
      srv.listen(p, () => {
        net.connect(p).on('data', (d) => done(d.toString() === 'unix\n', `unix server after tcp: ${d}`.trim()))
          .on('error', (e) => done(false, `connect ${e.code}`));
      });
    });
  });
}

function sendMany(n, host, port) {
  const s = dgram.createSocket('udp4');
  const buf = Buffer.alloc(1024, 0x61);
  let calls = 0;
  let errors = 0;
  for (let i = 0; i < n; i++) {
    s.send(buf, port, host, (err) => {
      if (err) errors++;
      if (++calls === n) done(errors === 0, `callbacks ${calls} errors ${errors}`);
    });
  }
}

function udpecho(n, host, port) {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let got = 0;
  s.on('message', (msg, rinfo) => {
    if (rinfo.address !== host || rinfo.port !== port || msg.toString() !== `ping ${got}`)
      done(false, `answer ${msg} from ${rinfo.address}:${rinfo.port}`);
    if (++got === n) done(true, `echoed ${got} from ${rinfo.address}`);
    else s.send(`ping ${got}`, port, host);
  });
  s.on('error', (e) => done(false, `udp ${e.code}`));
  s.send('ping 0', port, host);
}

function forkServer(port) {
  const srv = net.createServer();
  srv.listen(port, '0.0.0.0', () => {
    const child = fork(__filename, ['child']);
    child.on('message', (m) => {
      if (m === 'serving') {
        srv.close(); // the child alone accepts from here on
        clearTimeout(watchdog);
        console.log('ok serving');
      }
    });
    child.send('server', srv);
  });
}

function child() {
  process.on('message', (m, handle) => {
    if (m !== 'server') return;
    handle.on('connection', (c) => c.end(`child ${process.pid}\n`));
    process.send('serving');
  });
}

switch (cmd) {
  case 'unixafter': unixafter(args[0]); break;
  case 'dgram': sendMany(Number(args[0]), args[1], Number(args[2])); break;
  case 'udpecho': udpecho(Number(args[0]), args[1], Number(args[2])); break;
  case 'fork': forkServer(Number(args[0])); break;
  case 'child': clearTimeout(watchdog); child(); break;
  default: done(false, `usage: ${cmd}`);
}
