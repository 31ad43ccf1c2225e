/**
 * Renders Draw.io XML with draw.io's own viewer (viewer-static.min.js), shipped with the
 * extension and loaded only when a diagram is first shown. Everything the viewer would fetch
 * from the network (stencils, shapes, math) points at local paths, and the page's CSP blocks
 * the rest: the preview works offline and sends nothing anywhere.
 */

interface GraphViewerStatic {
  createViewerForElement(element: HTMLElement, callback?: (viewer: unknown) => void): void;
}

/** The globals the viewer reads and defines. */
interface ViewerGlobals {
  GraphViewer?: GraphViewerStatic;
  onDrawioViewerLoad?: () => void;
}

let viewerLoaded: Promise<GraphViewerStatic> | undefined;

function loadViewer(base: string, nonce: string): Promise<GraphViewerStatic> {
  const globals = window as unknown as ViewerGlobals;
  viewerLoaded ??= new Promise<GraphViewerStatic>((resolve, reject) => {
    // Read by the viewer at load time; their defaults are remote URLs.
    Object.assign(window, {
      STENCIL_PATH: `${base}/stencils`,
      SHAPES_PATH: `${base}/shapes`,
      mxBasePath: `${base}/mxgraph`,
      mxImageBasePath: `${base}/mxgraph/images`,
      DRAW_MATH_URL: `${base}/math`,
      DRAWIO_BASE_URL: base,
      DRAWIO_LIGHTBOX_URL: base,
      mxLoadResources: false,
      mxLoadStylesheets: false,
    });
    // Without this hook the viewer renders every .mxgraph element on the page by itself.
    globals.onDrawioViewerLoad = () => {
      if (globals.GraphViewer) resolve(globals.GraphViewer);
      else reject(new Error('The Draw.io viewer loaded without GraphViewer.'));
    };
    const script = document.createElement('script');
    script.nonce = nonce;
    script.src = `${base}/viewer-static.min.js`;
    script.onerror = () => reject(new Error('The Draw.io viewer could not be loaded.'));
    document.head.append(script);
  });
  return viewerLoaded;
}

/** Shows the diagram in `container`; rejects with a readable reason when it cannot. */
export async function renderDiagram(
  container: HTMLElement,
  xml: string,
  viewer: { base: string; nonce: string },
): Promise<void> {
  const parsed = new DOMParser().parseFromString(xml, 'application/xml');
  const parseError = parsed.querySelector('parsererror');
  if (parseError) {
    throw new Error(`The diagram XML does not parse: ${parseError.textContent?.trim()}`);
  }
  const root = parsed.documentElement.nodeName;
  if (root !== 'mxfile' && root !== 'mxGraphModel') {
    throw new Error(`The diagram's root element is <${root}>, not <mxfile> or <mxGraphModel>.`);
  }
  const GraphViewer = await loadViewer(viewer.base, viewer.nonce);
  const element = document.createElement('div');
  element.className = 'mxgraph';
  element.dataset.mxgraph = JSON.stringify({
    xml,
    toolbar: 'zoom pages layers',
    'toolbar-nohide': true,
    nav: true,
    resize: true,
    lightbox: false,
    center: true,
  });
  // The viewer measures the element, so it must be in the page first.
  container.replaceChildren(element);
  await new Promise<void>((resolve, reject) => {
    try {
      GraphViewer.createViewerForElement(element, () => resolve());
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
