// Maps a file name's extension to the Content-Type the static file server sends for it.
// Pure lookup, no I/O: text types carry `charset=utf-8` so browsers never guess the encoding.

const textTypes = {
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript', // RFC 9239 makes text/javascript the one JavaScript type
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  json: 'application/json',
  map: 'application/json', // source maps are JSON
  jsonld: 'application/ld+json',
  geojson: 'application/geo+json',
  ndjson: 'application/x-ndjson',
  gltf: 'model/gltf+json',
  webmanifest: 'application/manifest+json',
  manifest: 'application/manifest+json',
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  xml: 'application/xml',
  xsl: 'application/xslt+xml',
  mpd: 'application/dash+xml',
  xhtml: 'application/xhtml+xml',
  rss: 'application/rss+xml',
  atom: 'application/atom+xml',
  svg: 'image/svg+xml',
  ics: 'text/calendar',
  vtt: 'text/vtt',
  srt: 'application/x-subrip',
  vcf: 'text/vcard',
  wgsl: 'text/wgsl',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  toml: 'application/toml',
} as const satisfies Record<string, string>;

// Types sent without a charset parameter: binary formats, plus the odd text format whose consumers expect none.
const binaryTypes = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  apng: 'image/apng',
  webp: 'image/webp',
  avif: 'image/avif',
  heic: 'image/heic',
  heif: 'image/heif',
  jxl: 'image/jxl',
  ico: 'image/x-icon',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  ktx2: 'image/ktx2',
  glb: 'model/gltf-binary',
  usdz: 'model/vnd.usdz+zip',
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  otf: 'font/otf',
  eot: 'application/vnd.ms-fontobject',
  wasm: 'application/wasm', // WebAssembly.instantiateStreaming requires exactly this type
  pdf: 'application/pdf',
  epub: 'application/epub+zip',
  rtf: 'application/rtf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  br: 'application/x-brotli',
  tar: 'application/x-tar',
  bz2: 'application/x-bzip2',
  xz: 'application/x-xz',
  zst: 'application/zstd',
  rar: 'application/vnd.rar',
  '7z': 'application/x-7z-compressed',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  oga: 'audio/ogg',
  opus: 'audio/opus',
  flac: 'audio/flac',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  weba: 'audio/webm',
  mid: 'audio/midi',
  midi: 'audio/midi',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  webm: 'video/webm',
  ogv: 'video/ogg',
  mov: 'video/quicktime',
  mkv: 'video/x-matroska',
  avi: 'video/x-msvideo',
  mpeg: 'video/mpeg',
  mpg: 'video/mpeg',
  '3gp': 'video/3gpp',
  // `.ts` is also TypeScript, but no browser runs TypeScript while every HLS player fetches `.ts` segments:
  // MPEG transport stream, as in nginx's mime.types.
  ts: 'video/mp2t',
  m4s: 'video/iso.segment',
  // UTF-8 text by definition (RFC 8216 §4), but sent without a charset parameter, as nginx's mime.types does.
  m3u8: 'application/vnd.apple.mpegurl',
} as const satisfies Record<string, string>;

const fallbackType = 'application/octet-stream';

// One Map built once, so a lookup is a single hash probe with no prototype keys ("constructor") to trip on.
const typesByExtension: ReadonlyMap<string, string> = new Map([
  ...Object.entries(textTypes).map(([ext, type]): [string, string] => [ext, `${type}; charset=utf-8`]),
  ...Object.entries(binaryTypes),
]);

/** The Content-Type for `filePath`, chosen by its extension (case-insensitive); unknown types are octet-stream. */
export function contentTypeFor(filePath: string): string {
  const lastSlash = Math.max(filePath.lastIndexOf('/'), filePath.lastIndexOf('\\'));
  const baseName = filePath.slice(lastSlash + 1);
  const dot = baseName.lastIndexOf('.');
  // No dot, or only a leading one (".bashrc"), means the name has no extension.
  if (dot <= 0) return fallbackType;
  return typesByExtension.get(baseName.slice(dot + 1).toLowerCase()) ?? fallbackType;
}
