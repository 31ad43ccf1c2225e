/**
 * Configuration entries every onnxruntime session of the engine gets (also the benchmarks', so
 * they time what the engine runs).
 *
 * Denormal floats count as zero in CPU kernels. A softmax over long rows yields probabilities
 * below 1e-38, which x86 cores handle in microcode, several times slower: measured on this
 * project's 8-bit prefill decoder (2B layout, 1,024 tokens), Softmax 30 -> 7 ms a layer; on a
 * synthetic attention layer with wider scores, 85-102 -> 15-21 ms. Numbers that small change
 * no result (they are far below even fp16's range). onnxruntime sets it on its own threads for
 * each session that asks, and on the thread that creates the process's first session (the one
 * that runs sessions in Node), so every session sets it: whichever comes first decides. That
 * thread's JavaScript arithmetic then treats doubles below 2.2e-308 as zero too (so
 * `Number.MIN_VALUE > 0` is false there); nothing in the server computes with such numbers.
 */
export const SESSION_CONFIG = { session: { set_denormal_as_zero: '1' } };
