import { attr } from '../graph.ts';
import { notEqualMask } from './masking.ts';
import { unsupportedOption, weight } from './support.ts';
import type { ConvertContext, Converter, TensorRef } from './types.ts';

/** Gather rows of `table`; ids of any int type work, floats (tfjs feeds float ids) are cast first. */
export function gatherRows(ctx: ConvertContext, table: string, ids: TensorRef): string {
  const g = ctx.graph;
  const index = ids.dtype === 'int64' || ids.dtype === 'int32' ? ids.name : g.op('Cast', [ids.name], { to: attr.dtype('int64') });
  return g.op('Gather', [table, index]);
}

/** With maskZero, id 0 is padding: the mask (masking.ts) travels with the rows to the recurrent layers. */
const embedding: Converter = (call, [ids], ctx) => {
  const g = ctx.graph;
  const table = weight(call, 'embeddings');
  const rows = gatherRows(ctx, g.float('embeddings', table.shape, table.data), ids!);
  if (call.config.maskZero !== true) return [{ name: rows, dtype: 'float32' }];
  if (ctx.lm) throw unsupportedOption(call, 'maskZero: true', 'A language model decodes without padding: export a model without maskZero.');
  const zero = ids!.dtype === 'float32' ? g.scalarFloat('zero', 0) : g.addInitializer('zero', ids!.dtype, [], ids!.dtype === 'int64' ? BigInt64Array.of(0n) : Int32Array.of(0));
  return [{ name: rows, dtype: 'float32', mask: notEqualMask(g, ids!.name, zero) }];
};

export const embeddingConverters: Record<string, Converter> = { Embedding: embedding };
