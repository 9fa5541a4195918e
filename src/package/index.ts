/**
 * The package contract: what `ferry export` writes and every runtime reads (docs/FORMATS.md).
 * No Node APIs, no tfjs, no ONNX Runtime: the exporter, the Node server, the browser and the
 * edge worker all import it, and none of them imports another.
 */
export * from './io.ts';
export * from './manifest.ts';
export * from './parse.ts';
export * from './state.ts';
