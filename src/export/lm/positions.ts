/**
 * RoPE and ALiBi in the ONNX graph, from the same tables as training (src/train/models/positions.ts).
 * Queries sit at `position_ids`; keys, past and new, at cumsum(attention_mask) - 1, so that a key's
 * position is its rank among the real tokens of its row wherever the padding lies (left padding,
 * the server's masked gaps, a window that has rolled). The cache holds keys unrotated: each call
 * rotates the keys it attends to at their position now, which is what lets a rolled window re-base
 * its positions at 0 without recomputing a key (docs/FORMATS.md).
 */
import { alibiSlopes, type BlockPositional, ropeTables } from '../../train/models/positions.ts';
import type { AttentionIO } from '../converters/types.ts';
import { attr, type Graph } from '../graph.ts';

export interface RelativePositions {
  /** Rotates queries (and this call's keys) [B, H, S, hd]; identity for ALiBi. */
  rotateNew(x: string): string;
  /** Rotates keys [B, H, T, hd] at the positions of all of past + new. */
  rotateAll(x: string): string;
  /** Rotates the past keys [B, H, P, hd]. */
  rotatePast(x: string): string;
  /** ALiBi's [B, H, S, T] score bias, or undefined. */
  scoreBias(): string | undefined;
}

export interface PositionalSpec {
  kind: BlockPositional;
  heads: number;
  headDim: number;
  /** RoPE: rows of the rotation table (the context length). */
  maxLength: number;
}

/** One set of position tensors per graph, shared by every block. */
const built = new WeakMap<AttentionIO, RelativePositions>();

export function relativePositions(g: Graph, io: AttentionIO, spec: PositionalSpec): RelativePositions {
  const known = built.get(io);
  if (known) return known;
  const positions = g.inScope('positions', () => spec.kind === 'rope' ? rope(g, io, spec) : alibi(g, io, spec));
  built.set(io, positions);
  return positions;
}

/** cumsum(attention_mask) - 1 over past + new, 0 at padding before a row's first token: [B, T]. */
function keyPositions(g: Graph, io: AttentionIO): string {
  const one = g.scalarInt64('one', 1);
  const ranks = g.op('Sub', [g.op('CumSum', [io.attentionMask, g.scalarInt64('axis', 1)]), one]);
  return g.op('Max', [ranks, g.scalarInt64('zero', 0)], {}, { name: 'key_positions' });
}

function rope(g: Graph, io: AttentionIO, { headDim, maxLength }: PositionalSpec): RelativePositions {
  const tables = ropeTables(maxLength, headDim);
  const cosTable = g.float('rope_cos', [maxLength, headDim], tables.cos);
  const sinTable = g.float('rope_sin', [maxLength, headDim], tables.sin);
  // [B, S] positions -> [B, 1, S, hd] tables, broadcast over the heads.
  const angles = (positions: string) => ({
    cos: g.unsqueeze(g.op('Gather', [cosTable, positions]), [1]),
    sin: g.unsqueeze(g.op('Gather', [sinTable, positions]), [1]),
  });
  const half = headDim / 2;
  const split = g.int64('halves', [half, half]);
  const rotate = (x: string, at: { cos: string; sin: string }) => {
    const [first, second] = g.node('Split', [x, split], { axis: attr.int(-1) }, { outputs: 2 });
    const rotatedHalf = g.op('Concat', [g.op('Neg', [second!]), first!], { axis: attr.int(-1) });
    return g.op('Add', [g.op('Mul', [x, at.cos]), g.op('Mul', [rotatedHalf, at.sin])]);
  };
  const query = angles(io.positionIds);
  let all: { cos: string; sin: string } | undefined;
  let past: { cos: string; sin: string } | undefined;
  const keys = keyPositions(g, io);
  return {
    rotateNew: (x) => rotate(x, query),
    rotateAll: (x) => rotate(x, (all ??= angles(keys))),
    rotatePast: (x) => {
      past ??= (() => {
        const pastLength = g.op('Sub', [g.op('Shape', [io.attentionMask], { start: attr.int(1), end: attr.int(2) }), g.op('Shape', [io.positionIds], { start: attr.int(1), end: attr.int(2) })]);
        return angles(g.op('Slice', [keys, g.int64('from_start', [0]), pastLength, g.int64('time_axis', [1])]));
      })();
      return rotate(x, past);
    },
    scoreBias: () => undefined,
  };
}

function alibi(g: Graph, io: AttentionIO, { heads }: PositionalSpec): RelativePositions {
  const distance = g.op('Sub', [g.unsqueeze(io.positionIds, [1, 3]), g.unsqueeze(keyPositions(g, io), [1, 2])]);
  const slopes = g.float('alibi_slopes', [1, heads, 1, 1], alibiSlopes(heads).map((slope) => -slope));
  const bias = g.op('Mul', [g.op('Cast', [distance], { to: attr.dtype('float32') }), slopes], {}, { name: 'alibi_bias' });
  const same = (x: string) => x;
  return { rotateNew: same, rotateAll: same, rotatePast: same, scoreBias: () => bias };
}
