#!/usr/bin/env node
// The npm AzureMachineLearningWorkspaces client (@azure/arm-machinelearning) as a cross-check
// client of the azureml flavor's tests, against tests/servers/azureml_fake.py.
// Usage: node azureml_client.js get JOB | cancel JOB | create JOB ENVIRONMENT-ID COMPUTE-ID COMMAND
// The ARM endpoint, the subscription, resource group and workspace come from AZUREML_FAKE_URL,
// AZUREML_SUB, AZUREML_RG, AZUREML_WS; the token from the fake's token endpoint with the client
// secret in AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (AZURE_AUTHORITY_HOST).
// get prints {"name", "status", "tags", "jobType", "command"}; create makes a job without tags.
'use strict';
const { AzureMachineLearningWorkspaces } = require('@azure/arm-machinelearning');

async function token() {
    const env = process.env;
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: env.AZURE_CLIENT_ID,
        client_secret: env.AZURE_CLIENT_SECRET, scope: 'https://management.azure.com/.default' });
    const r = await fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}/oauth2/v2.0/token`, { method: 'POST', body });
    const d = await r.json();
    if (!r.ok)
        throw new Error(`token endpoint: ${r.status} ${d.error}`);
    return d.access_token;
}

async function main() {
    const [op, job, ...rest] = process.argv.slice(2);
    const env = process.env;
    // Loopback only: never let a missing variable send the client to Azure itself.
    for (const v of ['AZUREML_FAKE_URL', 'AZURE_AUTHORITY_HOST'])
        if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(env[v] || ''))
            throw new Error(`${v} must be the fake's loopback URL (http://127.0.0.1:PORT), got ${env[v] || 'nothing'}`);
    const tok = await token();
    // The SDK's own bearer policy refuses plain http; the fake is on loopback http, so it is
    // replaced by one that adds the same header.
    const bearer = {
        name: 'bearerTokenAuthenticationPolicy',
        sendRequest: (req, next) => {
            req.headers.set('Authorization', `Bearer ${tok}`);
            return next(req);
        },
    };
    const credential = { getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) };
    const client = new AzureMachineLearningWorkspaces(credential, env.AZUREML_SUB, {
        endpoint: env.AZUREML_FAKE_URL, allowInsecureConnection: true,
    });
    client.pipeline.removePolicy({ name: 'bearerTokenAuthenticationPolicy' });
    client.pipeline.addPolicy(bearer);
    const rg = env.AZUREML_RG, ws = env.AZUREML_WS;
    if (op === 'get') {
        const j = await client.jobs.get(rg, ws, job);
        const p = j.properties;
        console.log(JSON.stringify({ name: j.name, status: p.status, tags: p.tags || {}, jobType: p.jobType, command: p.command }));
    } else if (op === 'cancel') {
        await client.jobs.beginCancelAndWait(rg, ws, job, { updateIntervalInMs: 500 });
        console.log('canceled');
    } else if (op === 'create') {
        const [environmentId, computeId, command] = rest;
        const t0 = process.hrtime.bigint();
        await client.jobs.createOrUpdate(rg, ws, job, { properties: { jobType: 'Command', command, environmentId, computeId } });
        console.log(`created in ${Number(process.hrtime.bigint() - t0) / 1e6} ms`);
    } else {
        throw new Error('usage: azureml_client.js get JOB | cancel JOB | create JOB ENVIRONMENT-ID COMPUTE-ID COMMAND');
    }
}

main().catch((e) => {
    console.error(`azureml_client: ${e.statusCode || ''} ${e.code || ''} ${e.message}`);
    process.exit(1);
});
