import { strict as assert } from 'node:assert';
import { MAX_IMAGE_BYTES, type NextRequest } from '../../src/protocol/panel';
import { imageFileProblem, imageMimeType } from '../../webview/panel/imageFile';
import { describeDone, describeProgress } from '../../webview/panel/progressText';
import { readAheadOnPause } from '../../webview/panel/readAhead';
import { deviceWidth, fitScale, isDevice } from '../../webview/preview/layout';

describe('panel progress wording', () => {
  it('says what is happening with the numbers that matter', () => {
    assert.deepEqual(describeProgress({ stage: 'startingServer' }), {
      text: 'Starting the local model server…',
    });
    assert.deepEqual(describeProgress({ stage: 'downloading', percent: 99.9 }), {
      text: 'Downloading the model: 99%',
      percent: 99.9,
    });
    assert.deepEqual(describeProgress({ stage: 'building', item: 'vision encoder', percent: 5 }), {
      text: 'Preparing the model for this machine (vision encoder): 5%',
      percent: 5,
    });
    assert.equal(describeProgress({ stage: 'readingImage' }).text, 'Reading the image…');
    assert.deepEqual(describeProgress({ stage: 'readingImage', reading: 'image', percent: 37.5 }), {
      text: 'Reading the image: 37%',
      percent: 37.5,
    });
    assert.equal(
      describeProgress({ stage: 'readingImage', reading: 'prompt', percent: 100 }).text,
      'Reading the prompt: 100%',
    );
    assert.equal(
      describeProgress({ stage: 'generating', tokens: 0, tokensPerSecond: 0 }).text,
      'Generating…',
    );
    assert.equal(
      describeProgress({ stage: 'generating', tokens: 1500, tokensPerSecond: 41.26 }).text,
      'Generating: 1500 tokens at 41 tok/s',
    );
    assert.equal(describeDone(12, 3.14159), 'Done: 12 tokens at 3.1 tok/s.');
  });
});

describe('panel image checks', () => {
  it('knows the image type from the MIME type, else from the name', () => {
    assert.equal(imageMimeType({ name: 'a.bin', type: 'image/webp' }), 'image/webp');
    assert.equal(imageMimeType({ name: 'Shot.JPG', type: '' }), 'image/jpeg');
    assert.equal(
      imageMimeType({ name: 'd.svg', type: 'application/octet-stream' }),
      'image/svg+xml',
    );
    assert.equal(imageMimeType({ name: 'a.png', type: 'text/plain' }), undefined);
    assert.equal(imageMimeType({ name: 'a.tiff', type: 'image/tiff' }), undefined);
  });

  it('refuses other formats and images over the limit, with a reason', () => {
    assert.equal(
      imageFileProblem({ name: 'a.png', type: 'image/png', size: MAX_IMAGE_BYTES }),
      undefined,
    );
    assert.match(
      imageFileProblem({ name: 'a.png', type: 'image/png', size: MAX_IMAGE_BYTES + 1 })!,
      /a\.png is 20\.0 MB; the limit is 20 MB/,
    );
    assert.match(
      imageFileProblem({ name: 'scan.tiff', type: 'image/tiff', size: 10 })!,
      /scan\.tiff is not a PNG, JPEG, WebP, GIF or SVG image/,
    );
  });
});

describe('preview scaling', () => {
  it('shrinks a page wider than the view, never enlarges one', () => {
    assert.equal(fitScale(375, 800), 1);
    assert.equal(fitScale(1280, 640), 0.5);
    assert.equal(fitScale(1280, 0), 1);
    assert.equal(fitScale(1280, 10), 0.1);
  });

  it('lays the page out at the preset width, or at the view width for fit', () => {
    assert.equal(deviceWidth('mobile', 1000), 375);
    assert.equal(deviceWidth('desktop', 300), 1280);
    assert.equal(deviceWidth('fit', 612.7), 612);
    assert.equal(isDevice('fit'), true);
    assert.equal(isDevice('watch'), false);
  });
});

describe('reading the next request ahead', () => {
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const refine = (instruction: string): NextRequest => ({ kind: 'refine', instruction });
  const generate = (instruction: string): NextRequest => ({
    kind: 'generate',
    target: 'html',
    instruction,
  });

  it('sends typed text once typing pauses, once per request, nothing when none could start', async () => {
    const sent: NextRequest[] = [];
    const readAhead = readAheadOnPause((next) => sent.push(next), 20);
    readAhead.changed(refine('make'));
    readAhead.changed(refine('make it red'));
    await pause(50);
    assert.deepEqual(sent, [refine('make it red')]);
    readAhead.changed(refine('make it red'));
    readAhead.changed(refine('make it blue'));
    readAhead.changed(undefined);
    await pause(50);
    assert.deepEqual(sent, [refine('make it red')]);
  });

  it('sends only where quick changes settle, and the same request again only after a cancel', async () => {
    const sent: NextRequest[] = [];
    const readAhead = readAheadOnPause((next) => sent.push(next), 20);
    readAhead.changed(generate(''));
    readAhead.changed({ kind: 'generate', target: 'react', instruction: '' });
    readAhead.changed(generate(''));
    await pause(50);
    assert.deepEqual(sent, [generate('')]);
    readAhead.changed(generate(''));
    await pause(50);
    assert.deepEqual(sent, [generate('')], 'sent once');
    readAhead.cancel(); // another image
    readAhead.changed(generate(''));
    await pause(50);
    assert.deepEqual(sent, [generate(''), generate('')]);
  });

  it('a request starting cancels what is pending, and the same text may go again after it', async () => {
    const sent: NextRequest[] = [];
    const readAhead = readAheadOnPause((next) => sent.push(next), 20);
    readAhead.changed(refine('make it red'));
    readAhead.cancel();
    await pause(50);
    assert.deepEqual(sent, []);
    readAhead.changed(refine('make it red'));
    await pause(50);
    readAhead.cancel();
    readAhead.changed(refine('make it red'));
    await pause(50);
    assert.deepEqual(sent, [refine('make it red'), refine('make it red')]);
  });
});
