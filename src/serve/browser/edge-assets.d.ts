// The generated module that scripts/build-edge.ts bundles into the edge worker: the ORT .wasm
// as a precompiled module (a CompiledWasm import) and each package's files (the .onnx files as Data).
declare module 'ferry:edge-assets' {
  const assets: {
    wasm: WebAssembly.Module;
    /** `model` is a T5 package's merged decoder, and `encoder` its encoder. */
    packages: { source: string; manifest: unknown; tokenizer: unknown; model: ArrayBuffer; encoder?: ArrayBuffer }[];
    /** Largest model file a worker accepts, and the limit it derives from (for the error). */
    maxModelBytes: number;
    limitReason: string;
  };
  export default assets;
}
