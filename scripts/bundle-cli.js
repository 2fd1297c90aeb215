// Bundles the compiled CLI (dist/src/cli/main.js, tsc's output) into one file, dist/src/cli/main.bundle.js, which
// bin/opsflow.js runs through a V8 code cache (bin/codeCache.js). One file because Node 20 has no compile cache for
// modules: a single script can carry one, where the ~600 module files the CLI loads from would need ~600 caches
// and as many lookups. It sits beside main.js so that paths its modules take from __dirname stay as in tsc's
// output. The commands' lazy imports stay lazy: each bundled module runs only when first required.
const { readFileSync } = require('node:fs');
const { build } = require('esbuild');
const protobuf = require('protobufjs/light');

// Native addons cannot be bundled, and packages only some commands load (the sandbox's ssh2, the roles command's
// worker-side code, Slack, the cloud SDKs) are resolved from node_modules at run time as before.
const EXTERNAL = ['ssh2', 'cpu-features', '@aws-sdk/*', '@smithy/*', '@kubernetes/*', '@slack/*', 'playwright-core', 'pg', '@temporalio/worker', '@temporalio/core-bridge', '@temporalio/testing', '@swc/*', 'tsx', 'esbuild'];

// Building the Temporal API's description (protobufjs reflection objects for every message) is the largest part of
// a command's start. The CLI is a client: it needs neither the worker's core protocol (`coresdk`, which the worker
// loads from node_modules with its own copy) nor Temporal Cloud's operations API, a third of the description.
const CLIENT_UNUSED = [['coresdk'], ['temporal', 'api', 'cloud']];

/** @temporalio/proto's description without CLIENT_UNUSED, as a JSON string (JSON.parse reads it faster than a literal). */
const clientProtos = {
  name: 'client-protos',
  setup(b) {
    b.onLoad({ filter: /@temporalio[\\/]proto[\\/]protos[\\/]json-module\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const start = source.indexOf('.addJSON(') + '.addJSON('.length;
      const end = source.lastIndexOf(');');
      const description = JSON.parse(source.slice(start, end));
      for (const path of CLIENT_UNUSED) {
        const parent = path.slice(0, -1).reduce((ns, name) => ns.nested[name], { nested: description });
        if (!parent.nested[path.at(-1)]) throw new Error(`@temporalio/proto no longer has ${path.join('.')}: update CLIENT_UNUSED`);
        delete parent.nested[path.at(-1)];
      }
      // Fails the build if a type that stays refers to one that went.
      new protobuf.Root().addJSON(description).resolveAll();
      return { contents: `${source.slice(0, start)}JSON.parse(${JSON.stringify(JSON.stringify(description))})${source.slice(end)}`, loader: 'js' };
    });
  },
};

// protobufjs's Service.create generates the constructor of every request and response type of the service when a
// client is made (Connection makes four services; WorkflowService alone has 123 methods): ~250 generated
// functions per command, which uses two or three of them. The same code, taking each constructor on the method's
// first call instead.
const SERVICE_CTORS_EAGER = '})(method, method.resolvedRequestType.ctor, method.resolvedResponseType.ctor);';
const lazyServiceCtors = {
  name: 'lazy-service-ctors',
  setup(b) {
    b.onLoad({ filter: /[\\/]protobufjs[\\/]src[\\/]service\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(SERVICE_CTORS_EAGER)) throw new Error(`${args.path} changed: review lazyServiceCtors`);
      const lazy = source
        .replace('return rpc.Service.prototype.rpcCall.call(this, method, requestType, responseType, request, callback);', 'return rpc.Service.prototype.rpcCall.call(this, method, requestType.ctor, responseType.ctor, request, callback);')
        .replace(SERVICE_CTORS_EAGER, '})(method, method.resolvedRequestType, method.resolvedResponseType);');
      return { contents: lazy, loader: 'js' };
    });
  },
};

build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/src/cli/main.bundle.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: EXTERNAL,
  plugins: [clientProtos, lazyServiceCtors],
  // Less to read at every start; identifiers are not minified, so errors and stack traces read as before.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
}).catch(() => process.exit(1));
