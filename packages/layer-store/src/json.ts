/**
 * The one canonical JSON encoder of the store. Everything that becomes a digest (image configs,
 * manifests, indexes) goes through here, so equal values always give equal bytes.
 *
 * Like Go's `encoding/json` (what Docker, containerd and the OCI tools use):
 * - struct fields in the declaration order of the Go structs (OCI image-spec / Docker);
 * - map-like fields (Labels, ExposedPorts, Volumes, annotations, unknown objects) with keys
 *   sorted by byte order;
 * - `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`…; control characters as `\u00XX`
 *   except `\n`, `\r`, `\t`; no whitespace, no trailing newline.
 * Keys whose value is `undefined` are omitted (Go's `omitempty` on an unset field).
 */
import { compareUtf8 } from './order.js';

/** How to order an object's keys. */
type Shape =
  | { kind: 'struct'; fields: ReadonlyArray<readonly [string, Shape]> }
  | { kind: 'map'; value: Shape }
  | { kind: 'array'; item: Shape }
  | { kind: 'any' };

const any: Shape = { kind: 'any' };
const struct = (...fields: Array<readonly [string, Shape]>): Shape => ({ kind: 'struct', fields });
const map = (value: Shape = any): Shape => ({ kind: 'map', value });
const array = (item: Shape): Shape => ({ kind: 'array', item });

const platform = struct(['architecture', any], ['os', any], ['os.version', any], ['os.features', any], ['variant', any]);
const descriptor = struct(
  ['mediaType', any],
  ['digest', any],
  ['size', any],
  ['urls', any],
  ['annotations', map()],
  ['data', any],
  ['platform', platform],
  ['artifactType', any],
);
const health = struct(['Test', any], ['Interval', any], ['Timeout', any], ['StartPeriod', any], ['StartInterval', any], ['Retries', any]);
const containerConfig = struct(
  ['User', any],
  ['ExposedPorts', map()],
  ['Env', any],
  ['Entrypoint', any],
  ['Cmd', any],
  ['Volumes', map()],
  ['WorkingDir', any],
  ['Labels', map()],
  ['StopSignal', any],
  ['ArgsEscaped', any],
  ['Healthcheck', health],
  ['OnBuild', any],
  ['Shell', any],
);
const history = struct(['created', any], ['created_by', any], ['author', any], ['comment', any], ['empty_layer', any]);

/** Shapes of the documents the store writes. */
export const Shapes = {
  descriptor,
  /** one entry of an image config's `history` */
  history,
  /** OCI image config (image-spec `Image`, with Platform's fields inline). */
  config: struct(
    ['created', any],
    ['author', any],
    ['architecture', any],
    ['os', any],
    ['os.version', any],
    ['os.features', any],
    ['variant', any],
    ['config', containerConfig],
    ['rootfs', struct(['type', any], ['diff_ids', any])],
    ['history', array(history)],
  ),
  manifest: struct(
    ['schemaVersion', any],
    ['mediaType', any],
    ['artifactType', any],
    ['config', descriptor],
    ['layers', array(descriptor)],
    ['subject', descriptor],
    ['annotations', map()],
  ),
  index: struct(
    ['schemaVersion', any],
    ['mediaType', any],
    ['artifactType', any],
    ['manifests', array(descriptor)],
    ['subject', descriptor],
    ['annotations', map()],
  ),
  any,
} as const;

export type ShapeName = keyof typeof Shapes;

/**
 * Encodes `value` canonically (see the module comment). `shape` picks the field order; fields not
 * in the shape follow the known ones in byte order.
 */
export function canonicalJSON(value: unknown, shape: ShapeName | Shape = 'any'): string {
  return encode(value, typeof shape === 'string' ? Shapes[shape] : shape);
}

/** Picks the shape for a document by its media type (config, manifest, index, or `any`). */
export function shapeForMediaType(mediaType: string): Shape {
  if (/image\.config\.v1\+json$|container\.image\.v1\+json$/.test(mediaType)) return Shapes.config;
  if (/image\.manifest\.v1\+json$|distribution\.manifest\.v2\+json$/.test(mediaType)) return Shapes.manifest;
  if (/image\.index\.v1\+json$|manifest\.list\.v2\+json$/.test(mediaType)) return Shapes.index;
  return Shapes.any;
}


/** The field names of each struct shape, computed once. */
const knownFields = new WeakMap<Shape, ReadonlySet<string>>();
function fieldsOf(shape: Extract<Shape, { kind: 'struct' }>): ReadonlySet<string> {
  let known = knownFields.get(shape);
  if (known === undefined) {
    known = new Set(shape.fields.map(([k]) => k));
    knownFields.set(shape, known);
  }
  return known;
}

/**
 * Text that `canonicalJSON` writes as it is, in place of a value: lets a caller that encodes many
 * documents sharing parts (a build's configs share their history entries) encode each part once.
 * The text must be what `canonicalJSON` gives for that value and shape.
 */
export class EncodedJSON {
  constructor(readonly json: string) {}
}

function encode(value: unknown, shape: Shape): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof EncodedJSON) return value.json;
  if (typeof value === 'string') return encodeString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} as JSON`);
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    const item = shape.kind === 'array' ? shape.item : any;
    return `[${value.map((v) => encode(v, item)).join(',')}]`;
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
    let ordered: Array<readonly [string, Shape]>;
    if (shape.kind === 'struct') {
      const known = fieldsOf(shape);
      ordered = [
        ...shape.fields.filter(([k]) => obj[k] !== undefined),
        ...keys.filter((k) => !known.has(k)).sort(compareUtf8).map((k) => [k, any] as const),
      ];
    } else {
      const vs = shape.kind === 'map' ? shape.value : any;
      ordered = keys.sort(compareUtf8).map((k) => [k, vs] as const);
    }
    return `{${ordered.map(([k, s]) => `${encodeString(k)}:${encode(obj[k], s)}`).join(',')}}`;
  }
  throw new TypeError(`cannot encode a ${typeof value} as JSON`);
}

// the characters the loop below writes differently from themselves
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

/** A string as Go's encoding/json writes it (HTML-safe escaping). */
export function encodeString(s: string): string {
  // most strings need no escape at all: one native scan instead of a loop over the characters
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // lone surrogate: Go writes U+FFFD for invalid UTF-8
    else out += ch;
  }
  return out + '"';
}
