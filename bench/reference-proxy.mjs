// The reference for CPU per request (issue 13): the simplest Node proxy that does what any gateway must —
// read the body, JSON.parse it once, forward it with http.request, pipe the answer back. Usage:
// node bench/reference-proxy.mjs <upstream-url>; prints `READY <url>`.
import http from 'node:http';
const upstream = new URL(process.argv[2]);
const agent = new http.Agent({ keepAlive: true });
http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      JSON.parse(raw.toString('utf8'));
      const headers = { ...req.headers, host: upstream.host, 'content-length': raw.length };
      const up = http.request({ agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(raw);
    });
  })
  .listen(0, '127.0.0.1', function () {
    console.log(`READY http://127.0.0.1:${this.address().port}`);
  });
