/** Sizes as people write them: the parser lives in flows/ (flow files use it too). */
export { parseByteSize } from "../flows/byte-size.js";
