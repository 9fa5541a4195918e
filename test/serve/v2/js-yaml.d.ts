// js-yaml ships no types; the one function the protocol tests call.
declare module 'js-yaml' {
  const yaml: { load(text: string): unknown };
  export default yaml;
}
