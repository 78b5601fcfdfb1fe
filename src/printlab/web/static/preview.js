/**
 * PrintLab 3D preview: turns a placeholder element into an interactive view of a model file
 * (STL, OBJ or 3MF) drawn with the vendored three.js in static/vendor/three/ (no CDN, no build step).
 *
 * How to include it (e.g. on the staff job page):
 *
 *   <div class="model-preview"
 *        data-model-url="{{ url_for('jobs.model', job_id=job.id) }}"
 *        data-format="stl"                       {# stl | obj | 3mf (case-insensitive) #}
 *        role="img" aria-label="3D preview of {{ file_name }}">
 *     <p class="model-preview-status">The 3D preview needs JavaScript.</p>   {# optional fallback #}
 *   </div>
 *   <script type="module" src="{{ url_for('static', filename='preview.js') }}"></script>
 *
 * - The model URL must be same-origin (CSP connect-src 'self') and answer with the file's bytes.
 * - Nothing happens until the element scrolls into view: three.js (≈700 kB) is imported and the model
 *   fetched only then, so a page that never shows the preview pays only for this small file.
 * - The element keeps its label: it becomes a labelled group holding a focusable canvas (role img),
 *   a status line (loading / error text, aria-live), "Zoom in", "Zoom out" and "Reset view" buttons
 *   and a line of help. Drag to rotate, right-drag to pan, wheel or pinch to zoom; with the canvas
 *   focused, arrow keys rotate, + and − zoom and Home resets.
 * - Its progress is in data-preview-state: waiting → loading → ready, or error / unsupported (no
 *   WebGL 2: a plain message instead of an exception). data-preview-frames counts frames drawn.
 * - Content added to the page later (e.g. swapped in by a script) can be enhanced from another
 *   module: `import { enhanceAll } from "/static/preview.js"; enhanceAll(container);`.
 * - Works under the app's CSP: no inline script or style attribute is needed; sizes are set from
 *   here through element.style (allowed) and the rest is in printlab.css (.model-preview…).
 */

const VENDOR = "./vendor/three/";
const BACKGROUND = 0xeef1f4;
const MODEL_COLOR = 0x2f6fbd;
const KEY_ROTATE = Math.PI / 12; // 15° per arrow key press
const KEY_ZOOM = 1.25;
/** 3MF files declare their unit; the preview shows millimetres. */
const MM_PER_UNIT = { micron: 0.001, millimeter: 1, centimeter: 10, inch: 25.4, foot: 304.8, meter: 1000 };

let library = null;

/** three.js and its add-ons, imported once, on first need. */
function loadLibrary() {
  if (library === null) {
    library = Promise.all([
      import(VENDOR + "three.module.min.js"),
      import(VENDOR + "OrbitControls.js"),
      import(VENDOR + "STLLoader.js"),
      import(VENDOR + "OBJLoader.js"),
      import(VENDOR + "3MFLoader.js"),
      import(VENDOR + "fflate.module.js"),
    ]).then(([THREE, orbit, stl, obj, threeMf, fflate]) => ({
      THREE,
      OrbitControls: orbit.OrbitControls,
      STLLoader: stl.STLLoader,
      OBJLoader: obj.OBJLoader,
      ThreeMFLoader: threeMf.ThreeMFLoader,
      unzipSync: fflate.unzipSync,
    }));
    library.catch(() => { library = null; }); // let a later preview try again
  }
  return library;
}

/** An error whose message is fit to show to the person looking at the page. */
class PreviewError extends Error {
  constructor(message, state = "error") {
    super(message);
    this.state = state; // "error", or "unsupported" when the browser can't draw 3D at all
  }
}

let counter = 0;

function make(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text) element.textContent = text;
  return element;
}

/** Enhance every preview placeholder inside root that has not been enhanced yet. */
export function enhanceAll(root = document) {
  root.querySelectorAll(".model-preview[data-model-url]:not([data-preview-state])").forEach(enhance);
}

/** Enhance one placeholder: build its parts now, start the real work when it becomes visible. */
export function enhance(container) {
  if (container.dataset.previewState) return;
  const id = `model-preview-${++counter}`;
  const label = container.getAttribute("aria-label") || "3D preview of the model";
  container.replaceChildren();
  // A role=img element hides its children from assistive technology; the buttons must stay reachable.
  container.setAttribute("role", "group");
  container.setAttribute("aria-label", label);

  const stage = make("div", "model-preview-stage");
  const status = make("p", "model-preview-status");
  status.setAttribute("role", "status"); // a live region: it stays in the page, emptied rather than hidden
  const tools = make("div", "model-preview-tools");
  tools.hidden = true;
  const zoomIn = make("button", null, "+");
  const zoomOut = make("button", null, "−");
  const reset = make("button", null, "Reset view");
  zoomIn.setAttribute("aria-label", "Zoom in");
  zoomOut.setAttribute("aria-label", "Zoom out");
  for (const button of [zoomIn, zoomOut, reset]) {
    button.type = "button";
    tools.append(button);
  }
  const help = make(
    "p",
    "model-preview-help",
    "Drag to rotate, right-drag to pan, scroll or pinch to zoom. " +
      "Keyboard: focus the preview, then arrow keys rotate, + and − zoom, Home resets."
  );
  help.id = `${id}-help`;
  help.hidden = true;
  container.append(stage, status, tools, help);

  const parts = { container, label, stage, status, tools, help, zoomIn, zoomOut, reset };
  setState(parts, "waiting", "The 3D preview loads when it comes into view.");
  whenVisible(container, () => {
    start(parts).catch((error) => {
      if (error instanceof PreviewError) {
        showError(parts, error.message, error.state);
      } else {
        showError(parts, "The 3D preview couldn't be shown.");
        console.error(error);
      }
    });
  });
}

function setState(parts, state, message) {
  parts.container.dataset.previewState = state;
  parts.status.textContent = message || "";
  parts.status.classList.toggle("model-preview-error", state === "error" || state === "unsupported");
}

function showError(parts, message, state = "error") {
  parts.stage.replaceChildren();
  parts.stage.hidden = true;
  parts.tools.hidden = true;
  parts.help.hidden = true;
  setState(parts, state, message);
}

function whenVisible(element, callback) {
  if (!("IntersectionObserver" in window)) {
    callback();
    return;
  }
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) {
      observer.disconnect();
      callback();
    }
  });
  observer.observe(element);
}

function formatOf(container) {
  const declared = (container.dataset.format || "").trim().toLowerCase().replace(/^\./, "");
  if (declared) return declared;
  const match = /\.(stl|obj|3mf)(?:$|[?#])/i.exec(container.dataset.modelUrl || "");
  return match ? match[1].toLowerCase() : "";
}

async function start(parts) {
  const format = formatOf(parts.container);
  if (!["stl", "obj", "3mf"].includes(format)) {
    throw new PreviewError("There's no 3D preview for this type of file (only STL, OBJ and 3MF).");
  }
  setState(parts, "loading", "Loading the 3D preview…");
  let lib;
  try {
    lib = await loadLibrary();
  } catch (error) {
    throw new PreviewError("The 3D viewer couldn't be loaded. Reload the page to try again.");
  }
  const canvas = make("canvas");
  const renderer = createRenderer(lib.THREE, canvas);
  if (renderer === null) {
    throw new PreviewError(
      "This browser can't show 3D previews (WebGL 2 is turned off or not available). " +
        "Download the file to look at it in a slicer.",
      "unsupported"
    );
  }
  let model;
  try {
    const buffer = await download(parts.container.dataset.modelUrl);
    try {
      model = parse(lib, format, buffer);
    } catch (error) {
      if (error instanceof PreviewError) throw error;
      throw new PreviewError(
        `This file couldn't be read as ${format.toUpperCase()}; it may be damaged or in another format.`
      );
    }
  } catch (error) {
    renderer.dispose();
    renderer.forceContextLoss(); // browsers allow only a few live WebGL contexts per page
    throw error;
  }
  show(parts, lib, renderer, canvas, model);
}

function createRenderer(THREE, canvas) {
  // three.js r170 needs WebGL 2. Creating the context here turns "none" into a message, not an
  // exception; preserveDrawingBuffer keeps the frame readable (screenshots, toDataURL in tests).
  const context = canvas.getContext("webgl2", { antialias: true, alpha: false, preserveDrawingBuffer: true });
  if (!context) return null;
  try {
    const renderer = new THREE.WebGLRenderer({ canvas, context, antialias: true });
    renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    return renderer;
  } catch (error) {
    return null;
  }
}

async function download(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin" });
  } catch (error) {
    throw new PreviewError("The model couldn't be downloaded. Check the connection and reload the page.");
  }
  if (response.status === 404) {
    throw new PreviewError("The model file wasn't found; it may have been moved or deleted.");
  }
  if (response.status === 401 || response.status === 403) {
    throw new PreviewError("You need to be signed in on a lab workstation to see this model.");
  }
  if (!response.ok) {
    throw new PreviewError(`The server couldn't send the model (HTTP ${response.status}). Try again later.`);
  }
  if ((response.headers.get("Content-Type") || "").startsWith("text/html")) {
    // A sign-in page after a redirect: the session ended while the page was open.
    throw new PreviewError("The server sent a web page instead of the model; you may need to sign in again.");
  }
  return response.arrayBuffer();
}

/** The file's meshes in one group, in millimetres, Y up (three.js's convention). */
function parse(lib, format, buffer) {
  const { THREE } = lib;
  const group = new THREE.Group();
  if (format === "stl") {
    group.add(new THREE.Mesh(new lib.STLLoader().parse(buffer)));
    group.rotation.x = -Math.PI / 2; // print files are Z up
  } else if (format === "obj") {
    group.add(new lib.OBJLoader().parse(new TextDecoder().decode(buffer)));
  } else {
    const bytes = new Uint8Array(buffer);
    const scale = threeMfScale(lib, bytes);
    const object = new lib.ThreeMFLoader().parse(buffer);
    if (!object) throw new PreviewError("This 3MF file couldn't be unpacked.");
    group.add(object);
    group.scale.setScalar(scale);
    group.rotation.x = -Math.PI / 2;
  }
  const material = new THREE.MeshStandardMaterial({
    color: MODEL_COLOR,
    roughness: 0.6,
    metalness: 0.05,
    side: THREE.DoubleSide, // open meshes stay visible from inside
    // Shade each triangle from its own corners: files' normals are often missing (3MF) or wrong (STL).
    flatShading: true,
  });
  let triangles = 0;
  group.traverse((child) => {
    if (child.isMesh && child.geometry.attributes.position) {
      child.material = material;
      triangles += child.geometry.attributes.position.count / 3;
    }
  });
  const box = new THREE.Box3().setFromObject(group);
  const size = box.getSize(new THREE.Vector3());
  if (triangles < 1 || box.isEmpty() || ![size.x, size.y, size.z].every(Number.isFinite)) {
    throw new PreviewError(`This file has no triangles to show; it may be damaged or not a ${format.toUpperCase()} model.`);
  }
  return group;
}

function threeMfScale(lib, bytes) {
  let parts;
  try {
    parts = lib.unzipSync(bytes, { filter: (file) => /^3D\/[^/]*\.model$/i.test(file.name) });
  } catch (error) {
    throw new PreviewError("This file isn't a valid 3MF (it isn't a zip archive); it may be damaged.");
  }
  const first = Object.values(parts)[0];
  if (!first) return 1;
  const head = new TextDecoder().decode(first.subarray(0, 4096));
  const unit = /<model[^>]*\sunit\s*=\s*["']([a-z]+)["']/i.exec(head);
  return unit ? MM_PER_UNIT[unit[1].toLowerCase()] || 1 : 1;
}

/** Grid spacing: a round number of millimetres, about a tenth of the model's footprint. */
function niceStep(length) {
  const rough = Math.max(length, 1e-3) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= rough);
  return step;
}

function show(parts, lib, renderer, canvas, model) {
  const { THREE, OrbitControls } = lib;
  const { container, stage, tools, help } = parts;

  // Stand the model on the grid, centred.
  const box = new THREE.Box3().setFromObject(model);
  const size = box.getSize(new THREE.Vector3());
  const center = box.getCenter(new THREE.Vector3());
  const holder = new THREE.Group();
  holder.add(model);
  model.updateMatrixWorld(true);
  holder.position.set(-center.x, -box.min.y, -center.z);

  const scene = new THREE.Scene();
  scene.background = new THREE.Color(BACKGROUND);
  scene.add(holder);
  const step = niceStep(Math.max(size.x, size.z));
  const cells = Math.max(10, Math.ceil((Math.max(size.x, size.z) * 1.6) / step / 2) * 2);
  const grid = new THREE.GridHelper(step * cells, cells, 0x6e7781, 0xc3cad2);
  scene.add(grid);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x5a6470, 1.6));

  const radius = Math.max(size.length() / 2, 1e-3);
  const camera = new THREE.PerspectiveCamera(40, 1, radius / 100, radius * 200);
  const key = new THREE.DirectionalLight(0xffffff, 2.2);
  key.position.set(0.6, 1, 0.4); // above and to the right of the viewer, wherever they orbit to
  camera.add(key, key.target);
  key.target.position.set(0, 0, -1);
  scene.add(camera);
  const target = new THREE.Vector3(0, size.y / 2, 0);
  const distance = (radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2))) * 1.1;
  camera.position.copy(target).add(new THREE.Vector3(1, 0.75, 1.35).normalize().multiplyScalar(distance));

  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", parts.label);
  canvas.setAttribute("aria-describedby", help.id);
  stage.replaceChildren(canvas);

  const controls = new OrbitControls(camera, canvas);
  controls.target.copy(target);
  controls.minDistance = radius * 0.3;
  controls.maxDistance = distance * 6;
  controls.update();
  controls.saveState();

  let frames = 0;
  let queued = false;
  const draw = () => {
    queued = false;
    renderer.render(scene, camera);
    container.dataset.previewFrames = String(++frames);
    if (container.dataset.previewState === "loading") setState(parts, "ready", "");
  };
  const requestDraw = () => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(draw);
    }
  };
  controls.addEventListener("change", requestDraw);

  const fit = () => {
    const width = Math.max(stage.clientWidth, 1);
    const height = Math.max(stage.clientHeight, 1);
    renderer.setSize(width, height, false);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    requestDraw();
  };
  if ("ResizeObserver" in window) new ResizeObserver(fit).observe(stage);

  const spherical = new THREE.Spherical();
  const offset = new THREE.Vector3();
  const rotate = (left, up) => {
    offset.copy(camera.position).sub(controls.target);
    spherical.setFromVector3(offset);
    spherical.theta += left;
    spherical.phi = THREE.MathUtils.clamp(spherical.phi + up, 0.05, Math.PI - 0.05);
    offset.setFromSpherical(spherical);
    camera.position.copy(controls.target).add(offset);
    controls.update();
  };
  const zoom = (factor) => {
    offset.copy(camera.position).sub(controls.target);
    const length = THREE.MathUtils.clamp(offset.length() * factor, controls.minDistance, controls.maxDistance);
    camera.position.copy(controls.target).add(offset.setLength(length));
    controls.update();
  };
  const keys = {
    ArrowLeft: () => rotate(-KEY_ROTATE, 0),
    ArrowRight: () => rotate(KEY_ROTATE, 0),
    ArrowUp: () => rotate(0, -KEY_ROTATE),
    ArrowDown: () => rotate(0, KEY_ROTATE),
    "+": () => zoom(1 / KEY_ZOOM),
    "=": () => zoom(1 / KEY_ZOOM),
    "-": () => zoom(KEY_ZOOM),
    "_": () => zoom(KEY_ZOOM),
    Home: () => controls.reset(),
  };
  canvas.addEventListener("keydown", (event) => {
    const action = keys[event.key];
    if (!action || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault(); // arrows would scroll the page
    action();
  });
  parts.zoomIn.addEventListener("click", () => zoom(1 / KEY_ZOOM));
  parts.zoomOut.addEventListener("click", () => zoom(KEY_ZOOM));
  parts.reset.addEventListener("click", () => controls.reset());
  canvas.addEventListener("webglcontextlost", (event) => {
    event.preventDefault();
    showError(parts, "The 3D preview stopped (the graphics were reset). Reload the page to see it again.");
  });

  help.textContent += ` Each grid square is ${step.toLocaleString("en")} mm.`;
  tools.hidden = false;
  help.hidden = false;
  fit();
}

enhanceAll();
