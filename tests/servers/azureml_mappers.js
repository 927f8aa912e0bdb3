#!/usr/bin/env node
// Writes the serializer mappers of npm @azure/arm-machinelearning (AutoRest's models/mappers.js:
// every model by class name, and the polymorphic "discriminators" table) as JSON, for
// tests/servers/azureml_fake.py's body walker. Regular expressions become {"$regex": source}.
// Usage: node azureml_mappers.js OUT.json  (prints the package's version and api-version)
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

async function main() {
    const out = process.argv[2];
    if (!out) {
        console.error('usage: azureml_mappers.js OUT.json');
        process.exit(2);
    }
    const pkgDir = path.dirname(require.resolve('@azure/arm-machinelearning/package.json', { paths: [__dirname] }));
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    // The ES module file as it ships; its package is not "type": "module", so it is imported
    // from a copy named .mjs (it imports nothing).
    const src = path.join(pkgDir, 'dist-esm', 'src', 'models', 'mappers.js');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aml-mappers-'));
    const copy = path.join(tmp, 'mappers.mjs');
    fs.copyFileSync(src, copy);
    const m = await import('file://' + copy);
    fs.rmSync(tmp, { recursive: true, force: true });
    // The client's api-version: the default of its apiVersion parameter.
    const index = fs.readFileSync(path.join(pkgDir, 'dist', 'index.js'), 'utf8');
    const api = /apiVersion = \{[^}]*?defaultValue: "([^"]+)"/s.exec(index);
    const models = {};
    for (const [name, v] of Object.entries(m)) {
        if (name !== 'discriminators' && v && v.type)
            models[v.type.className || name] = v;
    }
    const discriminators = {};
    for (const [k, v] of Object.entries(m.discriminators))
        discriminators[k] = v.type.className;
    const doc = { package: pkg.name, version: pkg.version, api_version: api ? api[1] : null, models, discriminators };
    const text = JSON.stringify(doc, (k, v) => (v instanceof RegExp ? { $regex: v.source } : v));
    fs.writeFileSync(out + '.tmp', text);
    fs.renameSync(out + '.tmp', out);
    console.log(`${pkg.name} ${pkg.version} api-version ${doc.api_version}: ${Object.keys(models).length} models`);
}

main().catch((e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
});
