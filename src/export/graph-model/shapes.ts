/** Static shape arithmetic for the converters: what each output's shape is where the inputs' are known. */
export type Shape = (number | null)[];

/** NumPy broadcasting; undefined when a rank is unknown. */
export function broadcast(...shapes: (Shape | undefined)[]): Shape | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  return Array.from({ length: rank }, (_, i) => {
    let dim: number | null = 1;
    for (const s of shapes) {
      const d = s![s!.length - rank + i];
      if (d === undefined || d === 1) continue;
      if (d === null) dim = dim === 1 ? null : dim;
      else dim = d;
    }
    return dim;
  });
}

/** A negative axis counted from the end of a rank-`rank` shape. */
export const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

export function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Output length of a convolution or pooling window along one axis. */
export function windowOutput(size: number | null, kernel: number, stride: number, dilation: number, padding: 'SAME' | 'VALID' | [number, number]): number | null {
  if (size === null) return null;
  const effective = (kernel - 1) * dilation + 1;
  if (padding === 'SAME') return Math.ceil(size / stride);
  const padded = padding === 'VALID' ? size : size + padding[0] + padding[1];
  return Math.floor((padded - effective) / stride) + 1;
}

/** TF's SAME padding for one axis: the extra element goes at the end. */
export function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}
