/** Typed reads of a GraphDef node's attributes (JSON protobuf: ints as strings, strings base64). */
import type { DType } from '../graph.ts';
import { onnxDtypeOf, shapeOf, type TfNode } from './format.ts';

const text = (base64: string) => Buffer.from(base64, 'base64').toString('utf8');

export function attrInt(node: TfNode, key: string, fallback: number): number {
  const value = node.attr?.[key]?.i;
  return value === undefined ? fallback : Number(value);
}

export function attrInts(node: TfNode, key: string): number[] | undefined {
  const list = node.attr?.[key]?.list;
  return list ? (list.i ?? []).map(Number) : undefined;
}

export function attrFloat(node: TfNode, key: string, fallback: number): number {
  return node.attr?.[key]?.f ?? fallback;
}

export function attrBool(node: TfNode, key: string, fallback: boolean): boolean {
  return node.attr?.[key]?.b ?? fallback;
}

export function attrString(node: TfNode, key: string): string | undefined {
  const value = node.attr?.[key]?.s;
  return value === undefined ? undefined : text(value);
}

export function attrStrings(node: TfNode, key: string): string[] {
  return (node.attr?.[key]?.list?.s ?? []).map(text);
}

/** A `type` attribute as an ONNX dtype name; the raw TF name when ONNX has no such dtype here. */
export function attrType(node: TfNode, key: string): { dtype?: DType; tfName?: string } {
  const tfName = node.attr?.[key]?.type;
  return { dtype: onnxDtypeOf(tfName), tfName };
}

export function attrShape(node: TfNode, key: string): (number | null)[] | undefined {
  return shapeOf(node.attr?.[key]?.shape);
}
