// Just enough of protobuf to check a config.pbtxt against Triton's model_config.proto: the
// messages, fields and enums of a .proto file, and a text-format parser that checks each field
// it reads against them (name, scalar or message or enum type, repeated or not).

export interface ProtoField { type: string; repeated: boolean; map: boolean }
export interface ProtoSchema { messages: Map<string, Map<string, ProtoField>>; enums: Map<string, Set<string>> }

export function parseProto(text: string): ProtoSchema {
  const source = text.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const messages = new Map<string, Map<string, ProtoField>>();
  const enums = new Map<string, Set<string>>();
  const stack: { kind: 'message' | 'enum' | 'oneof' | 'other'; name: string }[] = [];
  const tokens = source.match(/map\s*<[^>]+>|[A-Za-z_][\w.]*|\d+|[{};=<>,]|"[^"]*"/g) ?? [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const owner = [...stack].reverse().find((s) => s.kind === 'message' || s.kind === 'enum');
    if ((token === 'message' || token === 'enum' || token === 'oneof') && tokens[i + 2] === '{') {
      stack.push({ kind: token, name: tokens[i + 1]! });
      if (token === 'message') messages.set(tokens[i + 1]!, new Map());
      if (token === 'enum') enums.set(tokens[i + 1]!, new Set());
      i += 2;
    } else if (token === '{') {
      stack.push({ kind: 'other', name: '' });
    } else if (token === '}') {
      stack.pop();
    } else if (owner?.kind === 'enum' && tokens[i + 1] === '=' && /^[A-Z_][A-Z0-9_]*$/.test(token)) {
      enums.get(owner.name)!.add(token);
      i += 2;
    } else if (owner?.kind === 'message' && stack.at(-1)!.kind !== 'other') {
      const repeated = token === 'repeated';
      const type = repeated || token === 'optional' ? tokens[i + 1]! : token;
      const name = tokens[i + (repeated || token === 'optional' ? 2 : 1)];
      const eq = tokens[i + (repeated || token === 'optional' ? 3 : 2)];
      if (name && eq === '=' && /^[A-Za-z_]/.test(type) && type !== 'option' && type !== 'reserved') {
        messages.get(owner.name)!.set(name, { type: type.replace(/\s+/g, ''), repeated: repeated || type.startsWith('map'), map: type.startsWith('map') });
        i += repeated || token === 'optional' ? 3 : 2;
      }
    }
  }
  return { messages, enums };
}

const SCALARS: Record<string, (token: string) => boolean> = {
  string: (t) => t.startsWith('"'),
  bytes: (t) => t.startsWith('"'),
  bool: (t) => t === 'true' || t === 'false',
  int32: (t) => /^-?\d+$/.test(t), int64: (t) => /^-?\d+$/.test(t), uint32: (t) => /^\d+$/.test(t), uint64: (t) => /^\d+$/.test(t),
  float: (t) => /^-?[\d.eE+-]+$/.test(t), double: (t) => /^-?[\d.eE+-]+$/.test(t),
};

/** Parses `text` as a `message` in protobuf text format; throws naming the first field that does not fit. Returns the fields read, by path. */
export function checkTextFormat(text: string, schema: ProtoSchema, message: string): Map<string, string[]> {
  const tokens = text.match(/"(?:[^"\\]|\\.)*"|[\w.+-]+|[{}[\]:,]/g) ?? [];
  let at = 0;
  const seen = new Map<string, string[]>();
  const fail = (problem: string): never => {
    throw new Error(`config.pbtxt: ${problem} (at token ${at}: ${tokens.slice(Math.max(0, at - 3), at + 3).join(' ')})`);
  };
  const next = () => tokens[at++] ?? fail('unexpected end');

  function readValue(field: ProtoField, path: string): void {
    if (tokens[at] === '{') {
      at++;
      const type = field.map ? undefined : field.type;
      if (type === undefined || !schema.messages.has(type)) fail(`${path} is ${field.type}, not a message`);
      readFields(type!, path, '}');
      return;
    }
    const value = next();
    const scalar = SCALARS[field.type];
    if (scalar) {
      if (!scalar(value)) fail(`${path} is ${field.type} but holds ${value}`);
    } else if (schema.enums.has(field.type)) {
      if (!schema.enums.get(field.type)!.has(value)) fail(`${path} is the enum ${field.type}, which has no ${value}`);
    } else {
      fail(`${path} is ${field.type} and cannot hold ${value}`);
    }
    seen.set(path, [...(seen.get(path) ?? []), value]);
  }

  function readFields(type: string, prefix: string, end: string | undefined): void {
    const fields = schema.messages.get(type)!;
    const counts = new Map<string, number>();
    while (at < tokens.length && tokens[at] !== end) {
      const name = next();
      const field = fields.get(name) ?? fail(`${type} has no field "${name}"`);
      const path = prefix ? `${prefix}.${name}` : name;
      counts.set(name, (counts.get(name) ?? 0) + 1);
      if (!field.repeated && counts.get(name)! > 1) fail(`${path} is not repeated but appears twice`);
      if (tokens[at] === ':') at++;
      if (tokens[at] === '[') {
        if (!field.repeated) fail(`${path} is not repeated but holds a list`);
        at++;
        while (tokens[at] !== ']') {
          readValue(field, path);
          if (tokens[at] === ',') at++;
        }
        at++;
      } else {
        readValue(field, path);
      }
      seen.set(`${path}#count`, [String((Number(seen.get(`${path}#count`)?.[0] ?? 0)) + 1)]);
    }
    if (end !== undefined) next();
  }

  readFields(message, '', undefined);
  return seen;
}
