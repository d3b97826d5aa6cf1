// Ready-made specs for what people most often ask of an image service.

const thumb = (name, side) => ({
  name,
  steps: [
    { op: "resize", width: side, height: side, fit: "cover" },
    { op: "convert", format: "webp", quality: 75 },
  ],
});

export const PRESETS = [
  {
    id: "thumbnails",
    label: "Thumbnails set",
    spec: () => ({ outputs: [thumb("thumb-160", 160), thumb("thumb-320", 320), thumb("thumb-640", 640)], archive: true }),
  },
  {
    id: "web",
    label: "Web-optimised WebP + AVIF",
    spec: () => ({
      outputs: [
        { name: "web-webp", steps: [{ op: "resize", width: 1600, height: 1600, fit: "inside" }, { op: "convert", format: "webp", quality: 80 }] },
        { name: "web-avif", steps: [{ op: "resize", width: 1600, height: 1600, fit: "inside" }, { op: "convert", format: "avif", quality: 60 }] },
      ],
    }),
  },
  {
    id: "anonymise",
    label: "Anonymise faces",
    spec: () => ({
      outputs: [
        { name: "faces", steps: [{ op: "detect_faces" }] },
        { name: "anonymised", steps: [{ op: "blur_faces" }, { op: "convert", format: "jpeg", quality: 85 }] },
      ],
    }),
  },
  { id: "ocr", label: "Read text", spec: () => ({ outputs: [{ name: "text", steps: [{ op: "ocr" }] }] }) },
  { id: "moderate", label: "Moderation check", spec: () => ({ outputs: [{ name: "moderation", steps: [{ op: "moderate" }] }] }) },
];

/** First values for a step's required params, so a new step is valid at once. */
export const STARTERS = {
  resize: { width: 800 },
  crop: { left: 0, top: 0, width: 256, height: 256 },
  rotate: { degrees: 90 },
  flip: { direction: "horizontal" },
  blur: { sigma: 2 },
  watermark: { text: "© PixTools" },
  convert: { format: "webp", quality: 80 },
};
