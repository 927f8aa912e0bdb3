// The npm `modal` SDK's own generated message codecs and service definition, for the Modal fake
// and the tests' raw calls. The package (0.11.1) does not export them: its bundle's source
// (dist/index.cjs) is compiled here as a module of its own (Module._compile; the installed files
// untouched) with one line appended that exports ModalClientDefinition and the codec helpers.
'use strict';
const Module = require('module');
const fs = require('fs');
const path = require('path');

const PINNED_SDK = '0.11.1';

function loadModal() {
  const pkg = path.join(__dirname, 'node_modules', 'modal');
  const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  const file = fs.realpathSync(path.join(pkg, 'dist', 'index.cjs'));
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m._compile(fs.readFileSync(file, 'utf8') + '\n;module.exports = { ModalClientDefinition, BinaryReader, ' +
    'genericResult_GenericStatusFromJSON, genericResult_GenericStatusToJSON, isValidObjectName, SDK_VERSION };\n', file);
  if (!m.exports.ModalClientDefinition || !m.exports.BinaryReader)
    throw new Error(`modal ${version}: the bundle lacks ModalClientDefinition or BinaryReader`);
  if (version !== PINNED_SDK) console.error(`modal_proto: npm modal is ${version}, checked against ${PINNED_SDK}`);
  return { version, pinned: PINNED_SDK, ...m.exports };
}

// The definition's method of a gRPC name ("SandboxCreate").
function method(modal, name) {
  const m = Object.values(modal.ModalClientDefinition.methods).find((x) => x.name === name);
  if (!m) throw new Error(`ModalClient has no method ${name}`);
  return m;
}

module.exports = { loadModal, method, PINNED_SDK };
