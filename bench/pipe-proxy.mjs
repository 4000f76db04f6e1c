// The streaming reference for uploads: the simplest Node proxy that streams a request body upstream as it arrives
// (req.pipe(http.request)) and pipes the answer back. Usage: node bench/pipe-proxy.mjs <upstream-url>; prints `READY <url>`.
import http from 'node:http';
const upstream = new URL(process.argv[2]);
const agent = new http.Agent({ keepAlive: true });
http
  .createServer((req, res) => {
    const headers = { ...req.headers, host: upstream.host };
    const up = http.request({ agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  })
  .listen(0, '127.0.0.1', function () {
    console.log(`READY http://127.0.0.1:${this.address().port}`);
  });
