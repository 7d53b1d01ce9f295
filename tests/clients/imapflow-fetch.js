#!/usr/bin/env node
// Reads one folder as a web mail app does with imapflow, and prints what
// the app would have seen as JSON on stdout:
//
//   node imapflow-fetch.js HOST PORT USER PASSWORD CA_FILE FOLDER
//
// For the folder: what SELECT told (exists, flags, permanentFlags).  For
// every message: uid, flags, size, internalDate, envelope, bodyStructure,
// a header-fields fetch, the whole message (download without a part) and
// every leaf body part (download(seq, part): decoded, text converted to
// UTF-8, with imapflow's meta).  Binary values are base64.  With
// IMAPFLOW_DEBUG set, imapflow's own log goes to stderr.
// tests/integration/test_corpus_clients.py runs it against Dovecot and
// imapmerge and compares the two.
'use strict';

const fs = require('fs');
// Debian 12's Node 18 has Web Crypto only as require('crypto').webcrypto;
// imapflow 2 takes it from globalThis (Node 19 and later).
if (!globalThis.crypto) globalThis.crypto = require('crypto').webcrypto;
const { ImapFlow } = require('imapflow');

const [host, port, user, pass, caFile, folder] = process.argv.slice(2);
const HEADER_FIELDS = ['message-id', 'date', 'from', 'to', 'cc', 'subject',
    'references', 'content-type'];

// JSON for what imapflow returns: Sets as sorted arrays, Dates as ISO
// strings, Buffers as base64, Maps as objects.
function plain(v) {
    if (v instanceof Set) return [...v].map(plain).sort();
    if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
    if (v instanceof Date) return isNaN(v) ? String(v) : v.toISOString();
    if (Buffer.isBuffer(v)) return { base64: v.toString('base64') };
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v).sort()) out[k] = plain(v[k]);
        return out;
    }
    return v;
}

// Leaf parts of a bodyStructure: nodes without children.  The root of a
// single-part message has no part number: its body is part 1.
function leaves(node, out = []) {
    if (node.childNodes && node.childNodes.length) {
        for (const c of node.childNodes) leaves(c, out);
    } else {
        out.push(node.part || '1');
    }
    return out;
}

async function readAll(stream) {
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    return Buffer.concat(chunks);
}

async function download(client, seq, part) {
    try {
        const { meta, content } = await client.download(String(seq), part);
        if (!content) return { empty: true };
        const data = await readAll(content);
        return { meta: plain(meta), base64: data.toString('base64') };
    } catch (err) {
        return { error: String(err && (err.responseText || err.message) || err) };
    }
}

// imapflow's log (pino-like calls) as JSON lines on stderr: stdout is ours.
function debugLogger() {
    const log = level => obj => process.stderr.write(
        JSON.stringify({ level, ...obj }, (k, v) => typeof v === 'bigint' ? String(v) : v) + '\n');
    return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

async function main() {
    const client = new ImapFlow({
        host, port: Number(port), secure: true,
        auth: { user, pass },
        tls: { ca: [fs.readFileSync(caFile)], servername: 'localhost' },
        logger: process.env.IMAPFLOW_DEBUG ? debugLogger() : false,
        disableAutoIdle: true,
    });
    await client.connect();
    const box = await client.mailboxOpen(folder);
    const out = {
        mailbox: plain({ exists: box.exists, flags: box.flags,
            permanentFlags: box.permanentFlags }),
        messages: [],
    };
    const found = [];
    // No other command while fetch() streams: collect first.
    for await (const msg of client.fetch('1:*', {
        uid: true, flags: true, size: true, internalDate: true,
        envelope: true, bodyStructure: true, headers: HEADER_FIELDS,
    })) {
        found.push(msg);
    }
    for (const msg of found) {
        const parts = {};
        for (const part of leaves(msg.bodyStructure || {})) {
            parts[part] = await download(client, msg.seq, part);
        }
        out.messages.push({
            seq: msg.seq, uid: msg.uid, flags: plain(msg.flags),
            size: msg.size, internalDate: plain(msg.internalDate),
            envelope: plain(msg.envelope),
            bodyStructure: plain(msg.bodyStructure),
            headers: msg.headers ? msg.headers.toString('utf8') : null,
            source: await download(client, msg.seq),
            parts,
        });
    }
    await client.logout();
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch(err => {
    process.stderr.write(`imapflow: ${err && err.stack || err}\n` +
        (err && err.responseText ? `server: ${err.responseText}\n` : ''));
    process.exit(1);
});
