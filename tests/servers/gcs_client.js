// npm @google-cloud/storage as the other side of the interop checks: what stepop wrote it reads
// (validating crc32c/md5 as it does), what it writes stepop reads, and the V4 signed URL it makes
// for a key and a clock, to compare with stepop's byte for byte.
//   node gcs_client.js upload BUCKET NAME FILE [resumable]
//   node gcs_client.js download BUCKET NAME FILE
//   node gcs_client.js list BUCKET PREFIX
//   node gcs_client.js sign KEYFILE BUCKET NAME RFC3339-TIME EXPIRES-SECONDS METHOD [ENDPOINT]
// Uses STORAGE_EMULATOR_HOST as the library does.
'use strict';
const path = require('path');
const fs = require('fs');
const { Storage } = require(path.join(__dirname, 'node_modules', '@google-cloud', 'storage'));

async function main(argv) {
  const [cmd, ...a] = argv;
  if (cmd === 'sign') {
    const [keyfile, bucket, name, when, expires, method, endpoint] = a;
    const key = JSON.parse(fs.readFileSync(keyfile, 'utf8'));
    const opts = { credentials: { client_email: key.client_email, private_key: key.private_key },
                   projectId: key.project_id || 'stepop-test' };
    if (endpoint) opts.apiEndpoint = endpoint;
    const storage = new Storage(opts);
    const at = new Date(when);
    const [url] = await storage.bucket(bucket).file(name).getSignedUrl({
      version: 'v4', action: method === 'PUT' ? 'write' : 'read',
      accessibleAt: at, expires: at.valueOf() + Number(expires) * 1000 });
    console.log(url);
    return;
  }
  const storage = new Storage({ projectId: 'stepop-test' });
  if (cmd === 'upload') {
    const [bucket, name, file, mode] = a;
    await storage.bucket(bucket).upload(file, { destination: name, resumable: mode === 'resumable',
                                                validation: 'crc32c' });
  } else if (cmd === 'download') {
    const [bucket, name, file] = a;
    await storage.bucket(bucket).file(name).download({ destination: file, validation: true });
  } else if (cmd === 'list') {
    const [bucket, prefix] = a;
    const [files] = await storage.bucket(bucket).getFiles({ prefix });
    for (const f of files) console.log(`${f.metadata.size} ${f.name}`);
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err && err.message ? err.message : err);
  process.exit(1);
});
