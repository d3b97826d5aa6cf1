// What the browser can tell about a file before it is sent: format (from its first bytes),
// dimensions (decoded by the browser), and a summary of its EXIF (read here, never sent).

const SIGNATURES = [
  ["jpeg", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ["png", (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ["gif", (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46],
  ["webp", (b) => ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP"],
  ["avif", (b) => ascii(b, 4, 4) === "ftyp" && /avi[fs]/.test(ascii(b, 8, 4))],
  ["tiff", (b) => (b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[3] === 0x2a)],
  ["bmp", (b) => b[0] === 0x42 && b[1] === 0x4d],
];

function ascii(bytes, at, n) {
  return String.fromCharCode(...bytes.subarray(at, at + n));
}

export function sniff(bytes) {
  const found = SIGNATURES.find(([, test]) => bytes.length >= 12 && test(bytes));
  return found ? found[0] : null;
}

export function formatBytes(n) {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(2)} MB`;
}

const TAGS = {
  0x010f: "make", 0x0110: "model", 0x0112: "orientation", 0x0131: "software",
  0x0132: "datetime", 0x9003: "taken", 0x829a: "exposure", 0x829d: "fnumber",
  0x8827: "iso", 0x920a: "focal",
};
const EXIF_IFD = 0x8769;
const GPS_IFD = 0x8825;

/** Parse the TIFF structure of an EXIF block into the handful of fields worth showing. */
export function parseTiff(view, start) {
  const little = view.getUint16(start) === 0x4949;
  const u16 = (o) => view.getUint16(start + o, little);
  const u32 = (o) => view.getUint32(start + o, little);
  const out = {};
  const value = (entry) => {
    const type = u16(entry + 2);
    const count = u32(entry + 4);
    const sizes = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8 };
    const size = (sizes[type] || 1) * count;
    const at = size > 4 ? u32(entry + 8) : entry + 8;
    if (type === 2) {
      let s = "";
      for (let i = 0; i < count - 1; i++) s += String.fromCharCode(view.getUint8(start + at + i));
      return s.trim();
    }
    if (type === 3) return u16(at);
    if (type === 4) return u32(at);
    if (type === 5 || type === 10) {
      const den = u32(at + 4);
      return den ? u32(at) / den : 0;
    }
    return null;
  };
  const walk = (ifd, depth) => {
    if (depth > 2 || ifd + 2 > view.byteLength - start) return;
    const n = u16(ifd);
    for (let i = 0; i < n; i++) {
      const entry = ifd + 2 + i * 12;
      if (start + entry + 12 > view.byteLength) return;
      const tag = u16(entry);
      if (tag === EXIF_IFD) walk(u32(entry + 8), depth + 1);
      else if (tag === GPS_IFD) out.gps = true;
      else if (TAGS[tag]) out[TAGS[tag]] = value(entry);
    }
  };
  walk(u32(4), 0);
  return out;
}

/** The EXIF summary of a JPEG (its APP1 segment), or null. */
export function readExif(buffer) {
  const view = new DataView(buffer);
  if (view.byteLength < 4 || view.getUint16(0) !== 0xffd8) return null;
  let off = 2;
  while (off + 4 <= view.byteLength) {
    const marker = view.getUint16(off);
    const len = view.getUint16(off + 2);
    if (marker === 0xffe1 && ascii(new Uint8Array(buffer, off + 4, 6), 0, 4) === "Exif") {
      try {
        return parseTiff(view, off + 10);
      } catch {
        return null; // a malformed block: show nothing rather than something wrong
      }
    }
    if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) break;
    off += 2 + len;
  }
  return null;
}

export function exifSummary(exif) {
  if (!exif) return "";
  const parts = [];
  const camera = [exif.make, exif.model].filter(Boolean).join(" ");
  if (camera) parts.push(camera);
  if (exif.taken || exif.datetime) parts.push(exif.taken || exif.datetime);
  if (exif.exposure) parts.push(exif.exposure < 1 ? `1/${Math.round(1 / exif.exposure)} s` : `${exif.exposure} s`);
  if (exif.fnumber) parts.push(`f/${exif.fnumber.toFixed(1)}`);
  if (exif.iso) parts.push(`ISO ${exif.iso}`);
  if (exif.focal) parts.push(`${Math.round(exif.focal)} mm`);
  if (exif.orientation && exif.orientation !== 1) parts.push(`orientation ${exif.orientation}`);
  if (exif.gps) parts.push("has GPS position");
  if (exif.software) parts.push(exif.software);
  return parts.join(" · ");
}

/** Everything shown for a picked file; `url` is an object URL the caller must revoke. */
export async function inspect(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const format = sniff(head);
  const exif = format === "jpeg" ? readExif(await file.slice(0, 256 * 1024).arrayBuffer()) : null;
  const url = URL.createObjectURL(file);
  let width = null;
  let height = null;
  try {
    const bitmap = await createImageBitmap(file); // honours EXIF orientation like the server
    width = bitmap.width;
    height = bitmap.height;
    bitmap.close();
  } catch {
    // A format this browser cannot decode (e.g. TIFF): the server still can.
  }
  return { file, format, exif, url, width, height };
}
