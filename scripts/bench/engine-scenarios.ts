/**
 * What bench:engine measures, through the chat engine as the server runs it: a cold screenshot
 * prompt, a refinement of it (KV reuse, speculation, plain), a follow-up read ahead while typed,
 * the prompt again with speculation, the refinement from nothing, Stops during a prefill, a
 * screenshot and its instruction read ahead, restarts (the image's vision outputs from disk; a
 * follow-up from the conversation saved at the stop, and without it), and going back to a
 * conversation after another screenshot (from the shelf, and read again). Engines share one model,
 * so each scenario starts from an empty decoder where it says so.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import type { ChatMessage, GenerationResult, LoadedModel } from '../../server/engine/contracts';
import { createChatEngine } from '../../server/engine/generation/chat-engine';
import { DEFAULT_PROMPT_LOOKUP } from '../../server/engine/generation/prompt-lookup';
import { runCostThrough } from '../../server/engine/generation/run-cost';
import { DEFAULT_SHELF_BYTES } from '../../server/engine/generation/conversation-shelf';
import { screenshot } from './screenshot';
import type { DecoderTiming } from './timed-decoder';

export interface ScenarioSettings {
  image: [number, number];
  /** New tokens of each measured generation. */
  tokens: number;
  /** Draft planner overrides (default: the engine's). */
  draftTokens?: number;
  runCostPerToken?: number;
}

export interface ScenarioResults {
  /** 1. The cold screenshot prompt, plain decoding, and its timed steps. */
  cold: GenerationResult;
  coldSteps: number[];
  /** 2-3. Its refinement, with speculation and plain; 5. from nothing. */
  refined: GenerationResult;
  refinedPlain: GenerationResult;
  refinedCold: GenerationResult;
  /** 3b. A follow-up read ahead, then asked for. */
  readAhead: GenerationResult;
  /** 4. The screenshot prompt again, with speculation. */
  coldSpec: GenerationResult;
  /** 6. Milliseconds from each Stop's due time until the engine was free. */
  stopWaits: number[];
  /** 7. The instruction read ahead after its image, then Generate. */
  instructionRead: GenerationResult;
  pasted: GenerationResult;
  /** 8. A fresh engine with the image's vision outputs on disk. */
  restarted: GenerationResult;
  /** 9. The follow-up after a restart: without the saved conversation, then from it. */
  followUpCold: GenerationResult;
  followUpRestored: GenerationResult;
  sequenceSaveMs: number;
  /** Bytes of the saved conversation; undefined where none was saved. */
  sequenceBytes: number | undefined;
  /** 10. The follow-up again after another screenshot: read again, and from the shelf. */
  switchBackPlain: GenerationResult;
  switchBackShelved: GenerationResult;
}

/** One pass of every scenario on `model`, whose decoder `timing` wraps. */
export async function runScenarios(
  model: LoadedModel,
  timing: DecoderTiming,
  checkpoint: ChatCheckpoint,
  modelName: string,
  settings: ScenarioSettings,
): Promise<ScenarioResults> {
  // Engines share the model: disposing one (which saves its conversation) keeps the model.
  const timedModel = { ...model, decoder: timing.decoder, dispose: async () => {} };
  // A fresh engine has empty image caches; plain decoding is asked for per request, so the
  // refinement runs in the engine that saw the first prompt, as in the server. Its vision
  // outputs go to disk only where `diskDir` says (a temporary build folder), measured apart,
  // and so do its conversations, where `keepConversations` says.
  const freshEngine = (diskDir?: string, keepConversations = false) =>
    createChatEngine(diskDir ? { ...timedModel, buildDir: diskDir } : timedModel, checkpoint, {
      modelName,
      imageDiskCacheBytes: diskDir ? undefined : 0,
      conversationShelfBytes: keepConversations ? DEFAULT_SHELF_BYTES : 0,
      speculation: {
        ...DEFAULT_PROMPT_LOOKUP,
        draftTokens: settings.draftTokens ?? DEFAULT_PROMPT_LOOKUP.draftTokens,
      },
      runCost:
        settings.runCostPerToken === undefined
          ? undefined
          : runCostThrough([
              [1, 1],
              [2, 1 + settings.runCostPerToken],
            ]),
    });
  const image = await screenshot(settings.image);
  const task = 'Generate a single HTML file with inline CSS that reproduces this UI.';
  const ask = (text: string): ChatMessage[] => [
    {
      role: 'user',
      content: [
        { type: 'image', image },
        { type: 'text', text },
      ],
    },
  ];
  const first = ask(task);
  const greedy = { greedy: true };

  model.decoder.reset();
  timing.stepMs.length = 0;
  // 1. A cold screenshot prompt, plain decoding (the figures bench:engine always printed).
  // Its vision outputs are written to disk, for step 8.
  const diskDir = mkdtempSync(join(tmpdir(), 'd2c-bench-build-'));
  const engine = freshEngine(diskDir);
  const cold = await engine.generate({
    messages: first,
    maxNewTokens: settings.tokens,
    sampling: greedy,
    speculation: false,
  });
  const coldSteps = timing.stepMs.slice();
  // 2. A refinement of it: the previous answer is in the prompt; KV reuse + speculation.
  const refinement: ChatMessage[] = [
    ...first,
    { role: 'assistant', content: cold.text },
    { role: 'user', content: 'Make the header blue and keep everything else as it is.' },
  ];
  const refined = await engine.generate({
    messages: refinement,
    maxNewTokens: settings.tokens,
    sampling: greedy,
  });
  // 3. The same refinement decoded plainly (its prompt is still cached: only decode differs).
  const refinedPlain = await engine.generate({
    messages: refinement,
    maxNewTokens: settings.tokens,
    sampling: greedy,
    speculation: false,
  });
  // 3b. A follow-up refinement read ahead while it was typed (the extension sends it with max
  // tokens 0 once typing pauses): asked for, it runs only its last token.
  const followUp: ChatMessage[] = [
    ...refinement,
    { role: 'assistant', content: refinedPlain.text },
    { role: 'user', content: 'Make the footer grey too.' },
  ];
  await engine.generate({ messages: followUp, maxNewTokens: 0, sampling: greedy });
  const readAhead = await engine.generate({
    messages: followUp,
    maxNewTokens: 1,
    sampling: greedy,
  });
  // 4. The screenshot prompt again, with speculation as users get it by default: on a first
  // answer drafts pass less often, and must not make decoding slower than plain.
  const coldSpec = await engine.generate({
    messages: first,
    maxNewTokens: settings.tokens,
    sampling: greedy,
  });
  // 5. The refinement from nothing: empty KV cache, image not cached (a fresh engine).
  model.decoder.reset();
  const refinedCold = await freshEngine().generate({
    messages: refinement,
    maxNewTokens: 1,
    sampling: greedy,
  });
  // 6. Stops at 10, 30, 50, 70 and 90% of the screenshot prompt's prefill, from nothing (the
  // vision tower runs once, then its output is cached): how long after a Stop the engine is
  // free. The wait counts from when the Stop was due: onnxruntime-node runs a session on the
  // main thread, so the timer (like a server's closed socket) is only seen between runs.
  const stopEngine = freshEngine();
  const stopWaits: number[] = [];
  for (const fraction of [0.1, 0.3, 0.5, 0.7, 0.9]) {
    model.decoder.reset();
    const stop = new AbortController();
    const delay = cold.timingsMs.prefillMs * fraction;
    let stopDue = Infinity;
    let stopTimer: NodeJS.Timeout | undefined;
    timing.onPrefill = () => {
      stopDue = performance.now() + delay;
      stopTimer = setTimeout(() => stop.abort(), delay);
    };
    await stopEngine.generate(
      { messages: first, maxNewTokens: 1, sampling: greedy },
      { signal: stop.signal },
    );
    timing.onPrefill = undefined;
    clearTimeout(stopTimer);
    // None: the prefill ended before the stop was due (it ran faster than the first time).
    if (performance.now() > stopDue) stopWaits.push(performance.now() - stopDue);
  }
  // 7. A screenshot read ahead as it is chosen, then again once an instruction is typed (the
  // extension sends Generate's prompt with max tokens 0 at once and after typing pauses):
  // Generate then runs only its last token. From nothing: a fresh engine, an empty cache.
  model.decoder.reset();
  const pasteEngine = freshEngine();
  const typed = ask(`${task}\n\nAlso: use a dark theme.`);
  await pasteEngine.generate({ messages: first, maxNewTokens: 0, sampling: greedy });
  const instructionRead = await pasteEngine.generate({
    messages: typed,
    maxNewTokens: 0,
    sampling: greedy,
  });
  const pasted = await pasteEngine.generate({
    messages: typed,
    maxNewTokens: 1,
    sampling: greedy,
  });
  // 8. After a restart (the model unloaded while idle, VS Code reopened): a fresh engine
  // whose build folder holds the screenshot's vision outputs, written in step 1.
  model.decoder.reset();
  const written = join(diskDir, 'images');
  const isWritten = () =>
    existsSync(written) && readdirSync(written).some((f) => f.endsWith('.vision'));
  for (let waited = 0; !isWritten(); waited += 50) {
    if (waited > 30_000) throw new Error(`step 1 wrote no vision outputs to ${written}`);
    await new Promise((done) => setTimeout(done, 50));
  }
  const restarted = await freshEngine(diskDir).generate({
    messages: first,
    maxNewTokens: 1,
    sampling: greedy,
  });
  // 9. The follow-up of step 3b after a restart: from nothing but the image's vision outputs
  // on disk (the server before it kept its conversation), then from the conversation the
  // server it replaces saved when it stopped.
  model.decoder.reset();
  const unsaved = freshEngine(diskDir, true);
  const followUpCold = await unsaved.generate({
    messages: followUp,
    maxNewTokens: 1,
    sampling: greedy,
  });
  const saveStarted = performance.now();
  await unsaved.dispose();
  const sequenceSaveMs = performance.now() - saveStarted;
  // The stop saved the conversation (a GPU build's rows read back from the device first).
  const shelf = join(diskDir, `conversations-${model.device}`);
  const [saved] = existsSync(shelf) ? readdirSync(shelf) : [];
  const sequenceBytes = saved ? statSync(join(shelf, saved)).size : undefined;
  model.decoder.reset();
  const followUpRestored = await freshEngine(diskDir, true).generate({
    messages: followUp,
    maxNewTokens: 1,
    sampling: greedy,
  });
  // 10. Back to the follow-up's conversation after another screenshot was read in between (as
  // when a generation from the history is refined again): without the shelf its conversation is
  // read again; with it, it comes back from disk.
  const otherPrompt = [
    {
      role: 'user' as const,
      content: [
        { type: 'image' as const, image: await screenshot([256, 256]) },
        { type: 'text' as const, text: task },
      ],
    },
  ];
  const switchBack = async (keepConversations: boolean) => {
    model.decoder.reset();
    const engine = freshEngine(diskDir, keepConversations);
    await engine.generate({ messages: followUp, maxNewTokens: 0, sampling: greedy });
    await engine.generate({ messages: otherPrompt, maxNewTokens: 0, sampling: greedy });
    const back = await engine.generate({ messages: followUp, maxNewTokens: 1, sampling: greedy });
    await engine.dispose(); // its shelved conversations written
    return back;
  };
  const switchBackPlain = await switchBack(false);
  const switchBackShelved = await switchBack(true);
  rmSync(diskDir, { recursive: true, force: true });
  return {
    switchBackPlain,
    switchBackShelved,
    restarted,
    followUpCold,
    followUpRestored,
    sequenceSaveMs,
    sequenceBytes,
    cold,
    coldSteps,
    coldSpec,
    refined,
    refinedPlain,
    refinedCold,
    readAhead,
    stopWaits,
    instructionRead,
    pasted,
  };
}
