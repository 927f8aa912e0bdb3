// firebase-tools' Cloud Storage emulator, its storage app only: the Java rules runtime is never
// started (StorageEmulator.start() would download and run it). The JSON API routes that the gs://
// store uses answer through the admin storage layer, which asks no rules.
// Usage: node gcs_emulator.js PORT   (prints "ready" once listening on 127.0.0.1:PORT)
'use strict';
const path = require('path');
const lib = path.join(__dirname, 'node_modules', 'firebase-tools', 'lib', 'emulator', 'storage');
const { StorageEmulator } = require(path.join(lib, 'index.js'));
const { createApp } = require(path.join(lib, 'server.js'));
const { EmulatorRegistry } = require(path.join(lib, '..', 'registry.js'));

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: gcs_emulator.js PORT');
  process.exit(2);
}
const emu = new StorageEmulator({ projectId: 'stepop-test', host: '127.0.0.1', port, rules: undefined });
// Links the emulator builds (a resumable session's Location) ask the registry for the host.
EmulatorRegistry.set(emu.getName(), emu);
createApp('stepop-test', emu).then((app) => {
  const server = app.listen(port, '127.0.0.1', () => console.log('ready'));
  server.requestTimeout = 0;
  // Exit at once: a client's idle keep-alive connection must not keep the process alive.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
});
