// Bundles the compiled CLI (dist/src/cli/main.js, tsc's output) into one file, dist/src/cli/main.bundle.js, which
// bin/opsflow.js runs through a V8 code cache (bin/codeCache.js). One file because Node 20 has no compile cache for
// modules: a single script can carry one, where the ~600 module files the CLI loads from would need ~600 caches
// and as many lookups. It sits beside main.js so that paths its modules take from __dirname stay as in tsc's
// output. The commands' lazy imports stay lazy: each bundled module runs only when first required.
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
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
      // google.protobuf first: the options extensions elsewhere (google.api.http, openapiv2's, Temporal's own) extend
      // its descriptor types, and an extension added before the type it extends waits in the root's `deferred`,
      // retried at every type added meanwhile by a lookup that searches the whole tree (building every type's
      // fields, see lazyReflection).
      const ordered = { google: description.google, ...description };
      // Those extensions name the type they extend in full; made absolute (a leading dot), the name is looked up from
      // the root rather than first through every type beside the extension, which would build those types' fields.
      (function absoluteExtends(ns) {
        for (const nested of Object.values(ns.nested ?? {})) {
          if (typeof nested.extend === 'string' && !nested.extend.startsWith('.')) nested.extend = `.${nested.extend}`;
          absoluteExtends(nested);
        }
      })({ nested: ordered });
      const check = new protobuf.Root();
      check.deferred.push = (field) => {
        throw new Error(`the extension ${field.fullName} is added before ${field.extend}: review the order in clientProtos`);
      };
      // Fails the build if a type that stays refers to one that went.
      check.addJSON(ordered).resolveAll();
      // Each type's fields and oneofs as JSON text, which lazyReflection parses when it adds them: JSON.parse reads
      // text in a string several times faster than it builds the ~3000 fields' objects, most of which no command uses.
      (function fieldsAsText(ns) {
        for (const nested of Object.values(ns.nested ?? {})) {
          if (nested.fields) {
            nested.fields = JSON.stringify(nested.fields);
            if (nested.oneofs) nested.oneofs = JSON.stringify(nested.oneofs);
          }
          fieldsAsText(nested);
        }
      })({ nested: ordered });
      return { contents: `${source.slice(0, start)}JSON.parse(${JSON.stringify(JSON.stringify(ordered))})${source.slice(end)}`, loader: 'js' };
    });
  },
};

/**
 * An esbuild plugin that edits the source of the files `filter` matches: each patch [text, replacement, count = 1]
 * must find its text exactly `count` times, or the build fails (the package changed: review the patch).
 * `patchesFor(path)` gives a file's patches; a file with none is bundled as it is.
 */
function sourcePatch(name, filter, patchesFor) {
  return {
    name,
    setup(b) {
      b.onLoad({ filter }, (args) => {
        const patches = patchesFor(args.path);
        if (!patches.length) return undefined;
        let source = readFileSync(args.path, 'utf8');
        for (const [eager, lazy, count = 1] of patches) {
          if (source.split(eager).length !== count + 1) throw new Error(`${args.path} changed: review ${name}`);
          source = source.replaceAll(eager, () => lazy);
        }
        return { contents: source, loader: 'js' };
      });
    },
  };
}

// protobufjs's Service.create resolves every method of the service (its path, its request and response types: two
// lookups) and generates the constructor of every request and response type when a client is made (Connection
// makes three services, 137 methods, WorkflowService 123 of them): ~270 lookups and about as many generated
// functions per command, which uses two or three of them. The same code, doing both at the method's first call.
const SERVICE_LAZY = [
  ['var methodName = util.lcFirst((method = this._methodsArray[i]).resolve().name)', 'var methodName = util.lcFirst((method = this._methodsArray[i]).name)'],
  [
    'return rpc.Service.prototype.rpcCall.call(this, method, requestType, responseType, request, callback);',
    'return rpc.Service.prototype.rpcCall.call(this, method, method.resolve().resolvedRequestType.ctor, method.resolvedResponseType.ctor, request, callback);',
  ],
  ['})(method, method.resolvedRequestType.ctor, method.resolvedResponseType.ctor);', '})(method);'],
];
const lazyServiceCtors = sourcePatch('lazy-service-ctors', /[\\/]protobufjs[\\/]src[\\/]service\.js$/, () => SERVICE_LAZY);

// protobufjs builds the reflection objects of the whole description when @temporalio/proto is loaded, and resolves
// the features (field presence, packing, enum closedness...) of all of them when the first type makes its codecs.
// A command uses a few dozen of those objects. These patches of the protobufjs copy that @temporalio/proto loads
// (not @grpc/proto-loader's) build them, and resolve their features, when first used instead.
const PROTOBUF_SRC = dirname(require.resolve('protobufjs/src/type.js'));
const TYPE_JS = join(PROTOBUF_SRC, 'type.js');
const OBJECT_JS = join(PROTOBUF_SRC, 'object.js');

// ~740 message types, ~3000 fields, each field a Field added through Type.add (which re-indexes the type's fields
// at every add); `status` uses the fields of about ten types. Type.fromJSON keeps the description of the fields and
// oneofs (JSON text, see clientProtos), and the type adds them when its `fields` or `oneofs` is first read:
// everything in protobufjs reaches them through these two (get, fieldsArray, fieldsById, setup, ctor, toJSON...).
// The type is detached from its parent meanwhile, as when it is built at once, so the root registers what it did
// before; if a walk of the root (resolveAll) has resolved the type's features, those of its fields and oneofs are
// resolved as the walk would have. Nested types are still added at once: they are properties of their parent
// (`Type.Nested`) and _handleAdd registers them for lookups.
const LAZY_FIELDS = [
  [
    TYPE_JS,
    `    var names = Object.keys(json.fields),
        i = 0;
    for (; i < names.length; ++i)
        type.add(
            ( typeof json.fields[names[i]].keyType !== "undefined"
            ? MapField.fromJSON
            : Field.fromJSON )(names[i], json.fields[names[i]])
        );
    if (json.oneofs)
        for (names = Object.keys(json.oneofs), i = 0; i < names.length; ++i)
            type.add(OneOf.fromJSON(names[i], json.oneofs[names[i]]));
    if (json.nested)`,
    `    var names, i;
    if (json.nested)`,
  ],
  [
    TYPE_JS,
    '    type._defaultEdition = "proto3";  // For backwards-compatibility.\n    return type;',
    `    type._defaultEdition = "proto3";  // For backwards-compatibility.
    type._lazyJson = json;
    return type;`,
  ],
  [
    TYPE_JS,
    'Object.defineProperties(Type.prototype, {\n',
    `function addLazyFields(type) {
    var json = type._lazyJson, parent = type.parent, names, i,
        fields = typeof json.fields === "string" ? JSON.parse(json.fields) : json.fields,
        oneofs = typeof json.oneofs === "string" ? JSON.parse(json.oneofs) : json.oneofs;
    type._lazyJson = null;
    type.parent = null;
    try {
        for (names = Object.keys(fields), i = 0; i < names.length; ++i)
            type.add((typeof fields[names[i]].keyType !== "undefined" ? MapField.fromJSON : Field.fromJSON)(names[i], fields[names[i]]));
        if (oneofs)
            for (names = Object.keys(oneofs), i = 0; i < names.length; ++i)
                type.add(OneOf.fromJSON(names[i], oneofs[names[i]]));
    } finally {
        type.parent = parent;
    }
    var edition = type._lazyEdition;
    if (edition) {
        type.oneofsArray.forEach(function(oneof) { oneof._resolveFeatures(edition); });
        type.fieldsArray.forEach(function(field) { field._resolveFeatures(edition); });
    }
}

Object.defineProperties(Type.prototype, {
    fields: {
        get: function() { if (this._lazyJson) addLazyFields(this); return this._fields; },
        set: function(fields) { this._fields = fields; }
    },
    oneofs: {
        get: function() { if (this._lazyJson) addLazyFields(this); return this._oneofs; },
        set: function(oneofs) { this._oneofs = oneofs; }
    },
`,
  ],
  [
    TYPE_JS,
    '    Namespace.prototype._resolveFeaturesRecursive.call(this, edition);\n    this.oneofsArray.forEach(',
    `    Namespace.prototype._resolveFeaturesRecursive.call(this, edition);
    if (this._lazyJson) {
        this._lazyEdition = edition;
        return this;
    }
    this.oneofsArray.forEach(`,
  ],
];

// The first Type#setup walks the root to resolve the features of ~1200 objects. It marks the root instead, and from
// then on each object resolves its features when they are first read, from its parent's (or its oneof's, or its
// declaring field's, which resolve first the same way) with the edition the walk would have passed down. Before
// the mark, features read unresolved, as before the walk.
const LAZY_FEATURES = [
  [TYPE_JS, '            root._resolveFeaturesRecursive(edition);\n', '            root._featuresOnDemand = edition;\n'],
  [
    OBJECT_JS,
    'Object.defineProperties(ReflectionObject.prototype, {\n',
    `function editionOf(object) {
    for (var ptr = object; ptr; ptr = ptr.parent)
        if (ptr._edition)
            return ptr._edition;
    return null;
}

Object.defineProperties(ReflectionObject.prototype, {
    _features: {
        get: function() {
            if (!this._featuresResolved && !this._resolvingFeatures) {
                var onDemand = this.root._featuresOnDemand;
                if (onDemand) {
                    this._resolvingFeatures = true;
                    try {
                        if (this.declaringField)
                            this.declaringField._features; // sets this sister field's
                        this._resolveFeatures(editionOf(this) || onDemand);
                    } finally {
                        this._resolvingFeatures = false;
                    }
                }
            }
            return this._featuresValue;
        },
        set: function(features) { this._featuresValue = features; }
    },
`,
  ],
];

const lazyReflection = sourcePatch('lazy-reflection', /[\\/]protobufjs[\\/]src[\\/](type|object)\.js$/, (path) =>
  [...LAZY_FIELDS, ...LAZY_FEATURES].filter(([file]) => file === path).map(([, eager, lazy]) => [eager, lazy]),
);

// long compiles a WebAssembly module when it is loaded (~3 ms) for its 64-bit multiplication, division and
// remainder, which `status` and `approve` never use (`list` does, for timestamps); compiled at the first use instead.
const LONG_LAZY_WASM = [
  ['    var wasm = null;\n    try {\n', '    var wasm;\n    function loadWasm() {\n    wasm = null;\n    try {\n'],
  ['    } catch {\n      // no wasm support :(\n    }\n', '    } catch {\n      // no wasm support :(\n    }\n    return wasm;\n    }\n'],
  ['      if (wasm) {\n', '      if (wasm === undefined ? loadWasm() : wasm) {\n', 3],
];
const lazyLongWasm = sourcePatch('lazy-long-wasm', /[\\/]node_modules[\\/]long[\\/]umd[\\/]index\.js$/, () => LONG_LAZY_WASM);

// grpc-js asks of each address whether it is IPv6 (net.isIPv6), and Node answers with a regular expression that
// its first use compiles: ~3 ms of every command. An IPv6 address has a colon; other strings need no test.
const GRPC_NET = `const net = require('node:net');
const isIPv6 = (s) => String(s).includes(':') && net.isIPv6(s);
module.exports = Object.create(net, { isIPv6: { value: isIPv6 }, isIP: { value: (s) => (net.isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0) } });`;
const grpcNet = {
  name: 'grpc-net',
  setup(b) {
    b.onResolve({ filter: /^(node:)?net$/ }, (args) => (/[\\/]@grpc[\\/]grpc-js[\\/]/.test(args.importer) ? { path: 'grpc-net', namespace: 'grpc-net' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'grpc-net' }, () => ({ contents: GRPC_NET, loader: 'js', resolveDir: __dirname }));
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
  plugins: [clientProtos, lazyServiceCtors, lazyReflection, lazyLongWasm, grpcNet],
  // Less to read at every start; identifiers are not minified, so errors and stack traces read as before.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
}).catch(() => process.exit(1));
