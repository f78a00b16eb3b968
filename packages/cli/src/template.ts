/**
 * The part of Go's text/template that people put in `docker inspect --format` and
 * `docker images --format`: field chains (`.Config.Env`, map keys `.Config.Labels.version`),
 * variables (`$`, `$v`, `{{range $k, $v := .X}}`), `if`/`else if`/`else`/`range`/`with`/`end`,
 * pipelines (`.X | json`), trim markers (`{{-`, `-}}`), string/number/bool literals and Docker's
 * functions (`json`, `index`, `join`, `split`, `upper`, `lower`, `title`, `len`, `print`,
 * `println`, `printf`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`, `truncate`).
 * Values print as Go prints them (`map[a:1 b:2]`, `[x y]`, `<no value>`).
 */

/** A template that cannot be parsed or run; the CLI shows it as a usage error. */
export class TemplateError extends Error {
  readonly code = 'E_TEMPLATE';
  readonly hint = 'see https://docs.docker.com/config/formatting/ — e.g. --format "{{.Id}}" or "{{json .Config}}"';
  constructor(message: string) {
    super(`template: ${message}`);
    this.name = 'TemplateError';
  }
}

type Arg =
  | { kind: 'field'; base: 'dot' | string; path: string[] }
  | { kind: 'lit'; value: unknown }
  | { kind: 'call'; name: string; args: Arg[] }
  | { kind: 'pipe'; cmds: Arg[] };
type Pipeline = { decl: string[]; cmds: Arg[] };
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'out'; pipe: Pipeline }
  | { kind: 'if'; branches: Array<{ cond: Pipeline | null; body: Node[] }> }
  | { kind: 'range'; pipe: Pipeline; body: Node[]; elseBody: Node[] }
  | { kind: 'with'; pipe: Pipeline; body: Node[]; elseBody: Node[] };

/** Struct fields of Docker's image types that are slices: nil prints `[]` (json: `null`). */
const SLICE_FIELDS = new Set(['Cmd', 'Entrypoint', 'Env', 'RepoTags', 'RepoDigests', 'Layers', 'Shell', 'OnBuild', 'Test']);
/** Fields that are maps with user keys: a missing key is `<no value>`, nil prints `map[]`. */
const USER_MAPS = new Set(['Labels', 'ExposedPorts', 'Volumes']);
/** Fields of Docker's ImageInspect and container Config structs (present even when the JSON omits them). */
const STRUCT_FIELDS = new Set([
  ...['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Container', 'ContainerConfig', 'DockerVersion', 'Author', 'Config', 'Architecture', 'Variant', 'Os', 'OsVersion', 'Size', 'VirtualSize', 'GraphDriver', 'RootFS', 'Metadata'],
  ...['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell'],
]);
const NIL_SLICE: unknown[] = Object.freeze([]) as unknown as unknown[];
const NIL_MAP: Record<string, unknown> = Object.freeze({});

const FUNCS = new Set(['json', 'index', 'join', 'split', 'upper', 'lower', 'title', 'len', 'print', 'println', 'printf', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'truncate', 'pad']);

/** Splits `src` into text and `{{…}}` actions, applying the trim markers. */
function lexActions(src: string): Array<{ text: string } | { action: string }> {
  const out: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text !== '') out.push({ text });
      break;
    }
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start += 2;
    }
    if (text !== '') out.push({ text });
    const rel = findClose(src.slice(start));
    if (rel < 0) throw new TemplateError(`unclosed action in ${JSON.stringify(src)}`);
    let action = src.slice(start, start + rel);
    trimNext = /\s-$/.test(action);
    if (trimNext) action = action.slice(0, -2);
    out.push({ action: action.trim() });
    i = start + rel + 2;
  }
  return out;
}

/** Index of the `}}` closing an action, skipping quoted strings. */
function findClose(s: string): number {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (q !== null) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = null;
    } else if (c === '"' || c === '`') q = c;
    else if (c === '}' && s[i + 1] === '}') return i;
  }
  return -1;
}

/** Tokens of one action: strings, parens, pipes, words. */
function tokens(action: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < action.length) {
    const c = action[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < action.length && action[j] !== c) j += action[j] === '\\' && c === '"' ? 2 : 1;
      if (j >= action.length) throw new TemplateError(`unterminated string in {{${action}}}`);
      out.push(action.slice(i, j + 1));
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '|' || c === ',') {
      out.push(c);
      i++;
    } else if (action.startsWith(':=', i)) {
      out.push(':=');
      i += 2;
    } else {
      let j = i;
      while (j < action.length && !/[\s()|,"`]/.test(action[j] as string) && !action.startsWith(':=', j)) j++;
      out.push(action.slice(i, j));
      i = j;
    }
  }
  return out;
}

function parseOperand(tok: string): Arg {
  if (tok.startsWith('"')) return { kind: 'lit', value: JSON.parse(tok) as string };
  if (tok.startsWith('`')) return { kind: 'lit', value: tok.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(tok)) return { kind: 'lit', value: Number(tok) };
  if (tok === 'true' || tok === 'false') return { kind: 'lit', value: tok === 'true' };
  if (tok === 'nil') return { kind: 'lit', value: null };
  if (tok.startsWith('.')) return { kind: 'field', base: 'dot', path: tok === '.' ? [] : tok.slice(1).split('.') };
  if (tok.startsWith('$')) {
    const [name, ...path] = tok.split('.');
    return { kind: 'field', base: name as string, path };
  }
  if (FUNCS.has(tok)) return { kind: 'call', name: tok, args: [] };
  throw new TemplateError(`function "${tok}" not defined`);
}

/** Parses `[$a[, $b] :=] cmd | cmd …` from tokens. */
function parsePipeline(toks: string[]): Pipeline {
  let decl: string[] = [];
  const d = toks.indexOf(':=');
  if (d >= 0) {
    decl = toks.slice(0, d).filter((t) => t !== ',');
    if (decl.length === 0 || decl.length > 2 || !decl.every((v) => /^\$\w*$/.test(v))) throw new TemplateError(`bad variable declaration ${toks.slice(0, d).join(' ')}`);
    toks = toks.slice(d + 1);
  }
  let pos = 0;
  const command = (): Arg => {
    const items: Arg[] = [];
    while (pos < toks.length && toks[pos] !== '|' && toks[pos] !== ')') {
      const t = toks[pos++] as string;
      if (t === '(') {
        const inner = pipeOf();
        if (toks[pos++] !== ')') throw new TemplateError('unclosed parenthesis');
        items.push(inner.kind === 'pipe' ? inner : { kind: 'pipe', cmds: [inner] });
      } else items.push(parseOperand(t));
    }
    if (items.length === 0) throw new TemplateError(`missing value in {{${toks.join(' ')}}}`);
    const [head, ...rest] = items as [Arg, ...Arg[]];
    if (head.kind === 'call') return { kind: 'call', name: head.name, args: rest };
    if (rest.length > 0) throw new TemplateError(`can't give arguments to a non-function in {{${toks.join(' ')}}}`);
    return head;
  };
  const pipeOf = (): Arg => {
    const cmds = [command()];
    while (toks[pos] === '|') {
      pos++;
      cmds.push(command());
    }
    return cmds.length === 1 ? (cmds[0] as Arg) : { kind: 'pipe', cmds };
  };
  const cmds = [command()];
  while (toks[pos] === '|') {
    pos++;
    cmds.push(command());
  }
  if (pos < toks.length) throw new TemplateError(`unexpected "${toks[pos]}"`);
  return { decl, cmds };
}

/** A parsed template, run with {@link Template.execute}. */
export class Template {
  private constructor(private readonly nodes: Node[]) {}

  /** Parses `src`. @throws TemplateError */
  static parse(src: string): Template {
    const items = lexActions(src);
    let i = 0;
    const block = (stopAt: Set<string>): { nodes: Node[]; stop: string } => {
      const nodes: Node[] = [];
      while (i < items.length) {
        const it = items[i++] as { text: string } | { action: string };
        if ('text' in it) {
          nodes.push({ kind: 'text', text: it.text });
          continue;
        }
        const a = it.action;
        if (a.startsWith('/*')) continue;
        const word = a.split(/\s+/)[0] as string;
        if (stopAt.has(word)) return { nodes, stop: a };
        if (word === 'if') {
          const branches: Array<{ cond: Pipeline | null; body: Node[] }> = [];
          let cond: Pipeline | null = parsePipeline(tokens(a.slice(2)));
          for (;;) {
            const b = block(new Set(['else', 'end']));
            branches.push({ cond, body: b.nodes });
            if (b.stop === 'end') break;
            if (b.stop === '') throw new TemplateError('unexpected EOF: missing {{end}}');
            const rest = b.stop.slice(4).trim();
            cond = rest.startsWith('if ') ? parsePipeline(tokens(rest.slice(3))) : null;
            if (cond === null) {
              const e = block(new Set(['end']));
              if (e.stop === '') throw new TemplateError('unexpected EOF: missing {{end}}');
              branches.push({ cond: null, body: e.nodes });
              break;
            }
          }
          nodes.push({ kind: 'if', branches });
        } else if (word === 'range' || word === 'with') {
          const pipe = parsePipeline(tokens(a.slice(word.length)));
          const b = block(new Set(['else', 'end']));
          let elseBody: Node[] = [];
          if (b.stop === '') throw new TemplateError('unexpected EOF: missing {{end}}');
          if (b.stop.startsWith('else')) {
            const e = block(new Set(['end']));
            if (e.stop === '') throw new TemplateError('unexpected EOF: missing {{end}}');
            elseBody = e.nodes;
          }
          nodes.push({ kind: word, pipe, body: b.nodes, elseBody });
        } else if (word === 'end' || word === 'else') {
          throw new TemplateError(`unexpected {{${word}}}`);
        } else {
          nodes.push({ kind: 'out', pipe: parsePipeline(tokens(a)) });
        }
      }
      return { nodes, stop: '' };
    };
    const top = block(new Set());
    return new Template(top.nodes);
  }

  /** Runs the template with `data` as `.` and `$`. @throws TemplateError */
  execute(data: unknown): string {
    const out: string[] = [];
    run(this.nodes, data, new Map([['$', data]]), out);
    return out.join('');
  }
}

function run(nodes: Node[], dot: unknown, vars: Map<string, unknown>, out: string[]): void {
  for (const n of nodes) {
    if (n.kind === 'text') out.push(n.text);
    else if (n.kind === 'out') {
      const v = evalPipeline(n.pipe, dot, vars);
      if (n.pipe.decl.length === 0) out.push(goString(v));
    } else if (n.kind === 'if') {
      for (const b of n.branches) {
        if (b.cond === null || truthy(evalPipeline(b.cond, dot, vars))) {
          run(b.body, dot, vars, out);
          break;
        }
      }
    } else if (n.kind === 'with') {
      const v = evalPipeline({ decl: [], cmds: n.pipe.cmds }, dot, vars);
      if (truthy(v)) run(n.body, v, declare(vars, n.pipe.decl, [v]), out);
      else run(n.elseBody, dot, vars, out);
    } else {
      const v = evalPipeline({ decl: [], cmds: n.pipe.cmds }, dot, vars);
      const entries: Array<[unknown, unknown]> = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : v !== null && typeof v === 'object'
          ? Object.keys(v)
              .sort()
              .map((k) => [k, (v as Record<string, unknown>)[k]])
          : v === null || v === undefined
            ? []
            : typeof v === 'number'
              ? Array.from({ length: v }, (_, i) => [i, i])
              : (() => {
                  throw new TemplateError(`range can't iterate over ${goString(v)}`);
                })();
      if (entries.length === 0) run(n.elseBody, dot, vars, out);
      for (const [k, x] of entries) {
        const d = n.pipe.decl;
        run(n.body, x, declare(vars, d, d.length === 2 ? [k, x] : [x]), out);
      }
    }
  }
}

function declare(vars: Map<string, unknown>, names: string[], values: unknown[]): Map<string, unknown> {
  if (names.length === 0) return vars;
  const m = new Map(vars);
  names.forEach((n, i) => m.set(n, values[i]));
  return m;
}

function evalPipeline(p: Pipeline, dot: unknown, vars: Map<string, unknown>): unknown {
  let v: unknown;
  let first = true;
  for (const c of p.cmds) {
    v = evalArg(c, dot, vars, first ? undefined : { value: v });
    first = false;
  }
  if (p.decl.length === 1) vars.set(p.decl[0] as string, v);
  return v;
}

function evalArg(a: Arg, dot: unknown, vars: Map<string, unknown>, piped?: { value: unknown }): unknown {
  if (a.kind === 'lit') return a.value;
  if (a.kind === 'pipe') return evalPipeline({ decl: [], cmds: a.cmds }, dot, vars);
  if (a.kind === 'field') {
    if (piped) throw new TemplateError("can't give an argument to a non-function");
    let v = a.base === 'dot' ? dot : vars.has(a.base) ? vars.get(a.base) : undefinedVariable(a.base);
    let parent = '';
    for (const f of a.path) {
      if (v === null || v === undefined) return undefined;
      if (typeof v !== 'object' || Array.isArray(v)) throw new TemplateError(`can't evaluate field ${f} in type ${goType(v)}`);
      if (!Object.hasOwn(v, f)) {
        // a key of a user map (a label) may be absent: <no value>; a field of Docker's structs that
        // the JSON omits (omitempty) is its zero value; any other name is an error
        if (USER_MAPS.has(parent) || v === NIL_MAP) return undefined;
        if (STRUCT_FIELDS.has(f)) {
          v = null;
          parent = f;
          continue;
        }
        throw new TemplateError(`executing "" at <.${a.path.join('.')}>: map has no entry for key "${f}"`);
      }
      v = (v as Record<string, unknown>)[f];
      parent = f;
    }
    // Docker runs the template on Go structs: a nil slice prints [] and a nil map map[]
    if (v === null && SLICE_FIELDS.has(parent)) return NIL_SLICE;
    if (v === null && (USER_MAPS.has(parent) || parent === 'Volumes')) return NIL_MAP;
    return v;
  }
  const args = a.args.map((x) => evalArg(x, dot, vars));
  if (piped) args.push(piped.value);
  return call(a.name, args);
}

function undefinedVariable(name: string): never {
  throw new TemplateError(`undefined variable: ${name}`);
}

function call(name: string, args: unknown[]): unknown {
  const need = (n: number): void => {
    if (args.length !== n) throw new TemplateError(`wrong number of args for ${name}: want ${n} got ${args.length}`);
  };
  const str = (v: unknown): string => (typeof v === 'string' ? v : goString(v));
  switch (name) {
    case 'json':
      need(1);
      // Go's json.Marshal escapes <, > and & as Docker's template does not undo it
      return (JSON.stringify(args[0] === NIL_SLICE || args[0] === NIL_MAP ? null : (args[0] ?? null)) as string).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    case 'index': {
      let v = args[0];
      for (const k of args.slice(1)) {
        if (v === null || v === undefined) return undefined;
        if (Array.isArray(v)) {
          if (typeof k !== 'number' || k < 0 || k >= v.length) throw new TemplateError(`index out of range: ${goString(k)}`);
          v = v[k];
        } else if (typeof v === 'object') v = (v as Record<string, unknown>)[str(k)];
        else throw new TemplateError(`can't index item of type ${goType(v)}`);
      }
      return v;
    }
    case 'join':
      need(2);
      if (!Array.isArray(args[0])) return args[0] === undefined || args[0] === null ? '' : str(args[0]);
      return (args[0] as unknown[]).map(str).join(str(args[1]));
    case 'split':
      need(2);
      return str(args[0]).split(str(args[1]));
    case 'upper':
      need(1);
      return str(args[0]).toUpperCase();
    case 'lower':
      need(1);
      return str(args[0]).toLowerCase();
    case 'title':
      need(1);
      return str(args[0]).replace(/(^|\s)(\S)/g, (_m, s: string, c: string) => s + c.toUpperCase());
    case 'len': {
      need(1);
      const v = args[0];
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (v !== null && typeof v === 'object') return Object.keys(v).length;
      throw new TemplateError(`len of type ${goType(v)}`);
    }
    case 'truncate':
      need(2);
      return [...str(args[0])].slice(0, Number(args[1])).join('');
    case 'pad':
      need(3);
      return `${' '.repeat(Number(args[1]))}${str(args[0])}${' '.repeat(Number(args[2]))}`;
    case 'print':
      return args.map((v, i) => (i > 0 && typeof v !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + goString(v)).join('');
    case 'println':
      return `${args.map(goString).join(' ')}\n`;
    case 'printf':
      return printf(str(args[0]), args.slice(1));
    case 'not':
      need(1);
      return !truthy(args[0]);
    case 'and':
      return args.find((v) => !truthy(v)) ?? args[args.length - 1];
    case 'or':
      return args.find((v) => truthy(v)) ?? args[args.length - 1];
    case 'eq':
      return args.slice(1).some((v) => v === args[0]);
    case 'ne':
      need(2);
      return args[0] !== args[1];
    default: {
      need(2);
      const [x, y] = args as [number | string, number | string];
      if (name === 'lt') return x < y;
      if (name === 'le') return x <= y;
      if (name === 'gt') return x > y;
      return x >= y;
    }
  }
}

function printf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([svdqtxf%])/g, (_m, _flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const v = args[i++];
    let s: string;
    if (verb === 'q') s = JSON.stringify(goString(v));
    else if (verb === 'x') s = typeof v === 'number' ? v.toString(16) : Buffer.from(goString(v)).toString('hex');
    else if (verb === 'f') s = Number(v).toFixed(prec === undefined ? 6 : Number(prec));
    else s = goString(v);
    const w = width === '' ? 0 : Number(width);
    return _flags.includes('-') ? s.padEnd(w) : s.padStart(w);
  });
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function goType(v: unknown): string {
  if (Array.isArray(v)) return '[]interface {}';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  return typeof v;
}

/** How Go's fmt prints a JSON-shaped value with %v. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === null ? '<nil>' : goString(x))).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${goString((v as Record<string, unknown>)[k] ?? null)}`).join(' ')}]`;
  }
  return String(v);
}
