// The official client (npm @azure/storage-blob) against the blob endpoint of
// AZURE_STORAGE_CONNECTION_STRING, for the interop tests and the benchmark:
//   mkcontainer NAME
//   put CONTAINER BLOB FILE        upload (the client's block upload above its own threshold)
//   get CONTAINER BLOB FILE        download (parallel ranges)
//   md5 CONTAINER BLOB             the blob's Content-MD5 (base64) or "none"
//   setmd5 CONTAINER BLOB BASE64   replace the blob's Content-MD5 (to tamper with it)
//   sas CONTAINER BLOB PERMS EXPIRY VERSION
//                                  generateBlobSASQueryParameters with the account key
//   csas CONTAINER PERMS EXPIRY    a container SAS (for AZURE_STORAGE_SAS_TOKEN)
"use strict";
const { BlobServiceClient, StorageSharedKeyCredential, generateBlobSASQueryParameters } = require("@azure/storage-blob");

function fields(cs) {
  const out = {};
  for (const part of cs.split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

async function main() {
  const [cmd, ...a] = process.argv.slice(2);
  const cs = process.env.AZURE_STORAGE_CONNECTION_STRING;
  const f = fields(cs || "");
  if (cmd === "sas") {
    const cred = new StorageSharedKeyCredential(f.AccountName, f.AccountKey);
    const q = generateBlobSASQueryParameters(
      { containerName: a[0], blobName: a[1], permissions: a[2], expiresOn: new Date(a[3]), version: a[4] }, cred);
    console.log(q.toString());
    return;
  }
  if (cmd === "csas") {
    const cred = new StorageSharedKeyCredential(f.AccountName, f.AccountKey);
    const q = generateBlobSASQueryParameters(
      { containerName: a[0], permissions: a[1], expiresOn: new Date(a[2]), version: "2021-12-02" }, cred);
    console.log(q.toString());
    return;
  }
  const svc = BlobServiceClient.fromConnectionString(cs);
  if (cmd === "mkcontainer") {
    await svc.getContainerClient(a[0]).createIfNotExists();
    return;
  }
  const blob = svc.getContainerClient(a[0]).getBlockBlobClient(a[1]);
  if (cmd === "put") {
    await blob.uploadFile(a[2], { concurrency: 8, blockSize: 8 << 20 });
  } else if (cmd === "get") {
    await blob.downloadToFile(a[2], 0, undefined, { concurrency: 8 });
  } else if (cmd === "md5") {
    const p = await blob.getProperties();
    console.log(p.contentMD5 ? Buffer.from(p.contentMD5).toString("base64") : "none");
  } else if (cmd === "setmd5") {
    const p = await blob.getProperties();
    await blob.setHTTPHeaders({ blobContentType: p.contentType, blobContentMD5: Buffer.from(a[2], "base64") });
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

main().catch((err) => {
  console.error(err.message || String(err));
  process.exit(1);
});
