// Cross-check of the Entra fake with the official client: npm @azure/identity gets a token from
// tests/servers/azure_auth_fake.py over https (msal-node takes no http authority), so the fake's
// checks of secrets, certificate assertions and federated tokens are the ones the real client
// passes.
//
//   node azure_identity_check.js secret|certificate|workload SCOPE
//
// Reads AZURE_AUTH_FAKE_TLS_URL (the authority host; its CA comes through NODE_EXTRA_CA_CERTS),
// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or
// AZURE_FEDERATED_TOKEN_FILE. Prints {"length", "expires_in"}, never the token; exit 1 with the
// client's error.
"use strict";
const identity = require("@azure/identity");

async function main() {
  const [mode, scope] = process.argv.slice(2);
  const env = process.env;
  const opts = { authorityHost: env.AZURE_AUTH_FAKE_TLS_URL, disableInstanceDiscovery: true };
  let cred;
  if (mode === "secret") {
    cred = new identity.ClientSecretCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, env.AZURE_CLIENT_SECRET, opts);
  } else if (mode === "certificate") {
    cred = new identity.ClientCertificateCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID,
      { certificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH }, opts);
  } else if (mode === "workload") {
    cred = new identity.WorkloadIdentityCredential({ ...opts, tenantId: env.AZURE_TENANT_ID,
      clientId: env.AZURE_CLIENT_ID, tokenFilePath: env.AZURE_FEDERATED_TOKEN_FILE });
  } else {
    throw new Error("usage: azure_identity_check.js secret|certificate|workload SCOPE");
  }
  const t = await cred.getToken(scope);
  console.log(JSON.stringify({ length: t.token.length,
    expires_in: Math.round((t.expiresOnTimestamp - Date.now()) / 1000) }));
}

main().catch((err) => {
  console.error(String(err && err.message ? err.message : err).split("\n")[0]);
  process.exit(1);
});
