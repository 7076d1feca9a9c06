#!/usr/bin/env node
// frontail client for bench/run.sh: N socket.io connections to one frontail server, counting
// workload lines exactly like the Rust clients (bench/src/common.rs): distinct seqs,
// duplicates, order, latency = receive time - send time on CLOCK_MONOTONIC
// (process.hrtime.bigint() reads CLOCK_MONOTONIC on Linux), same histogram buckets.
// Prints `READY ok failed`, then `RESULT {json}`.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const io = require('socket.io-client');

const argv = process.argv.slice(2);
const arg = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const port = Number(arg('--port'));
const file = arg('--file');
const conns = Number(arg('--conns', 1));
const expected = Number(arg('--expected', 0));
const idleMs = Number(arg('--idle', 5)) * 1000;
const deadline = Date.now() + Number(arg('--deadline', 120)) * 1000;

// frontail's socket.io namespace: md5 of its file arguments joined by spaces.
const ns = crypto.createHash('md5').update(file).digest('hex');
const nowNs = () => Number(process.hrtime.bigint());

function bucketOf(us) {
  if (us < 1024) return us;
  if (us >= 2 ** 31) us = 2 ** 31 - 1;
  const e = 31 - Math.clz32(us);
  const sub = (us >>> (e - 9)) & 511;
  return 1024 + (e - 10) * 512 + sub;
}

const hist = new Map();
let ready = 0;
let failed = 0;
let done = 0;
let activity = 0;
const stats = [];
const sockets = [];

for (let i = 0; i < conns; i += 1) {
  const st = {
    received: 0, distinct: 0, dups: 0, out_of_order: 0, bad: 0, gaps: 0, gap_lines: 0,
    first_recv_ns: 0, last_recv_ns: 0, max_seq: 0, error: null,
  };
  stats.push(st);
  const seen = new Uint8Array(expected + 2);
  let counted = false;
  let isReady = false;
  const socket = io(`http://127.0.0.1:${port}/${ns}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
  });
  sockets.push(socket);
  socket.on('connect', () => {
    if (!isReady) { isReady = true; ready += 1; }
  });
  socket.on('connect_error', (e) => {
    if (!isReady && st.error === null) { failed += 1; }
    st.error = `connect: ${e}`;
  });
  socket.on('disconnect', (r) => { if (!counted) st.error = `disconnected: ${r}`; });
  socket.on('line', (line) => {
    const now = nowNs();
    activity = now;
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    const seq = Number(line.slice(0, sp1));
    const sendNs = Number(line.slice(sp1 + 1, sp2));
    if (sp1 <= 0 || sp2 <= 0 || !Number.isFinite(seq) || !Number.isFinite(sendNs)) {
      st.bad += 1;
      return;
    }
    st.received += 1;
    if (st.first_recv_ns === 0) st.first_recv_ns = now;
    st.last_recv_ns = now;
    if (seq < seen.length && seen[seq]) { st.dups += 1; return; }
    if (seq < seen.length) seen[seq] = 1;
    st.distinct += 1;
    if (seq < st.max_seq) st.out_of_order += 1; else st.max_seq = seq;
    const b = bucketOf(Math.max(0, Math.floor((now - sendNs) / 1000)));
    hist.set(b, (hist.get(b) || 0) + 1);
    if (!counted && expected > 0 && st.distinct >= expected) { counted = true; done += 1; }
  });
}

let readyAt = 0;
let stdinClosed = false;
process.stdin.on('end', () => { stdinClosed = true; });
process.stdin.on('error', () => { stdinClosed = true; });
process.stdin.resume();

function finish() {
  const cpu = process.cpuUsage();
  const out = {
    conns: stats,
    hist: { b: Object.fromEntries(hist) },
    cpu_s: (cpu.user + cpu.system) / 1e6,
    connect_failures: failed,
  };
  fs.writeSync(1, `RESULT ${JSON.stringify(out)}\n`);
  for (const s of sockets) s.close();
  process.exit(0);
}

const timer = setInterval(() => {
  const now = nowNs();
  if (!readyAt && ready + failed >= conns) {
    fs.writeSync(1, `READY ${ready} ${failed}\n`);
    readyAt = now;
  }
  if (stdinClosed || Date.now() >= deadline) { clearInterval(timer); finish(); return; }
  if (readyAt) {
    if (expected > 0 && done >= conns) { clearInterval(timer); finish(); return; }
    if (now - Math.max(activity, readyAt) > idleMs * 1e6) { clearInterval(timer); finish(); }
  }
}, 10);
