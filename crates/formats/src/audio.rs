//! Audio input for `shotfix analyze` (CONTRACT.md §3): WAV decoding, and the
//! choice between the three folder layouts that carry recordings.
//!
//! A WAV file is read whole into memory (at most [`MAX_WAV_BYTES`]) and parsed
//! from there. We walk the RIFF chunks ourselves rather than let `hound` do it:
//! hound stops at the `data` chunk, and ShotSpotter's `smj0` metadata comes after
//! it; hound also does not skip the pad byte after an odd-sized chunk. Every size
//! a header claims is checked against the bytes actually present before anything
//! is allocated, so a header claiming 4 GB of samples costs nothing. hound then
//! decodes the samples from a canonical header we write in front of the checked
//! data bytes, so it only ever sees a well-formed file.
//!
//! # References
//! - Microsoft, "Multimedia Programming Interface and Data Specifications 1.0"
//!   (1991): RIFF chunks, word alignment, `WAVE_FORMAT_PCM`.
//! - Microsoft, "WAVEFORMATEXTENSIBLE" (mmreg.h / ksmedia.h): the extensible
//!   `fmt` layout and the `KSDATAFORMAT_SUBTYPE_*` GUIDs.

use std::io::Read;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use model::{Sensor, SensorId, UtcNanos, Weather};

use crate::smj0::{parse_smj0, Smj0};
use crate::{list_dir, require_folder, research, scene, smj0, FormatError, Frame};

/// The largest WAV file read, bytes (1 GiB): about 12 hours of 12 kHz 16-bit mono,
/// or 46 minutes of 96 kHz 32-bit float. The decoded channel 0 takes at most twice
/// this in memory (16-bit samples become 32-bit floats).
pub const MAX_WAV_BYTES: u64 = 1 << 30;

/// The sample rates accepted, Hz (CONTRACT.md §5). Below 8 kHz a muzzle blast's
/// onset cannot be timed to a fraction of a millisecond; above 96 kHz is not a
/// rate any field sensor uses, and more likely a corrupt header.
pub const SAMPLE_RATES_HZ: RangeInclusive<u32> = 8_000..=96_000;

/// One sensor's recording.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    pub sensor: SensorId,
    pub path: PathBuf,
    /// UTC of the first sample.
    pub start: UtcNanos,
    pub sample_rate_hz: u32,
    /// Mono samples, digital full scale = ±1.0 (float files may exceed it). A file
    /// with several channels contributes channel 0: every sensor format shotfix
    /// knows records its measurement microphone there (ShotSpotter's `smj0`
    /// transducer list names channel 0).
    pub samples: Vec<f32>,
    /// The sound pressure level, dB SPL, of a digital full-scale signal, when the
    /// file says (the `fullScale` of the active channel-0 transducer in an `smj0`
    /// chunk); `None` otherwise.
    pub full_scale_db_spl: Option<f64>,
}

impl AudioClip {
    /// The clip of `sensor` recorded in `wav` (read from `path`), starting at `start`.
    pub(crate) fn from_wav(
        sensor: SensorId,
        path: PathBuf,
        start: UtcNanos,
        wav: Wav,
    ) -> AudioClip {
        AudioClip {
            sensor,
            path,
            start,
            sample_rate_hz: wav.sample_rate_hz,
            full_scale_db_spl: wav.smj0.and_then(|m| m.full_scale_db_spl),
            samples: wav.samples,
        }
    }
}

/// Everything `analyze` needs from a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeInput {
    pub frame: Frame,
    /// Positions in the local frame: the recording sensors, by id (a scene folder
    /// lists its sensors in its own order, and may have some without audio).
    pub sensors: Vec<Sensor>,
    /// At least one, sorted by sensor id; at most one per sensor, and every
    /// clip's sensor is in `sensors`.
    pub clips: Vec<AudioClip>,
    pub weather: Weather,
}

/// How a WAV file stores its samples: the encodings CONTRACT.md §5 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavEncoding {
    /// 16-bit signed integer PCM.
    Int16,
    /// 24-bit signed integer PCM (three bytes a sample).
    Int24,
    /// 32-bit IEEE 754 float.
    Float32,
}

impl WavEncoding {
    fn bytes_per_sample(self) -> u16 {
        match self {
            WavEncoding::Int16 => 2,
            WavEncoding::Int24 => 3,
            WavEncoding::Float32 => 4,
        }
    }
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub sample_rate_hz: u32,
    /// Channels in the file; only channel 0 is kept.
    pub channels: u16,
    pub encoding: WavEncoding,
    /// Channel 0, digital full scale = ±1.0.
    pub samples: Vec<f32>,
    /// The ShotSpotter `smj0` metadata chunk, when the file has one.
    pub smj0: Option<Smj0>,
}

/// A mono 16-bit WAV file of `samples` (full scale ±1, clipped beyond),
/// in memory: the clip format sensors upload.
pub fn wav_bytes(samples: &[f32], rate_hz: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    // Writing to memory cannot fail but for a clip over 4 GB, which the
    // length limit rules out.
    if let Ok(mut w) = hound::WavWriter::new(&mut out, spec) {
        for &s in samples {
            let _ = w.write_sample((s.clamp(-1.0, 1.0) * 32_767.0).round() as i16);
        }
        let _ = w.finalize();
    }
    out.into_inner()
}

/// Reads a WAV file (see [`parse_wav_bytes`]); files over [`MAX_WAV_BYTES`] are
/// refused before they are read.
pub fn read_wav(path: &Path) -> Result<Wav, FormatError> {
    let io = |source| FormatError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_WAV_BYTES {
        return Err(too_large(path, len));
    }
    let mut bytes = Vec::new();
    // The limit also holds if the file grows while we read it.
    file.take(MAX_WAV_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse_wav_bytes(path, &bytes)
}

fn too_large(path: &Path, len: u64) -> FormatError {
    FormatError::invalid(
        path,
        format!("WAV file of {len} bytes: larger than the {MAX_WAV_BYTES} bytes accepted"),
    )
}

/// Parses the bytes of a WAV file: RIFF/WAVE with one `fmt` and one `data` chunk,
/// 16- or 24-bit integer PCM or 32-bit float (plain or `WAVE_FORMAT_EXTENSIBLE`),
/// any number of channels (channel 0 is kept), 8–96 kHz; and an optional `smj0`
/// chunk. Other chunks are skipped. `path` names the file in errors.
///
/// Strict where being lenient would mean guessing: a file shorter than its RIFF
/// header says, a chunk that runs past the end, a `data` chunk that is not a whole
/// number of frames, non-finite float samples and a corrupt `smj0` chunk are
/// errors. The redundant byte-rate field is not checked, since nothing depends on it.
pub fn parse_wav_bytes(path: &Path, bytes: &[u8]) -> Result<Wav, FormatError> {
    let invalid = |m: String| FormatError::invalid(path, m);
    if bytes.len() as u64 > MAX_WAV_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    let chunks = find_chunks(bytes).map_err(invalid)?;
    let fmt_body = chunks
        .fmt
        .ok_or_else(|| invalid("no fmt chunk: not a usable WAV file".into()))?;
    let data = chunks
        .data
        .ok_or_else(|| invalid("no data chunk: not a usable WAV file".into()))?;
    let fmt = parse_fmt(fmt_body).map_err(invalid)?;
    let frame_bytes = usize::from(fmt.block_align());
    if data.len() % frame_bytes != 0 {
        return Err(invalid(format!(
            "data chunk of {} bytes is not a whole number of {frame_bytes}-byte frames",
            data.len()
        )));
    }
    let samples = decode_channel_0(&fmt, data).map_err(invalid)?;
    let smj0 = match chunks.smj0 {
        Some(body) => Some(parse_smj0(path, body)?),
        None => None,
    };
    Ok(Wav {
        sample_rate_hz: fmt.sample_rate_hz,
        channels: fmt.channels,
        encoding: fmt.encoding,
        samples,
        smj0,
    })
}

/// The chunks a WAV reader needs, as slices of the file.
#[derive(Debug, Default)]
struct Chunks<'a> {
    fmt: Option<&'a [u8]>,
    data: Option<&'a [u8]>,
    smj0: Option<&'a [u8]>,
}

/// Walks the RIFF chunks of `bytes`, checking every size against the bytes present.
/// Nothing is collected but the three chunks we read, so a file of a million empty
/// chunks costs no memory.
fn find_chunks(bytes: &[u8]) -> Result<Chunks<'_>, String> {
    let (Some(magic), Some(riff_size), Some(form)) =
        (bytes.get(0..4), le_u32(bytes, 4), bytes.get(8..12))
    else {
        return Err(format!(
            "{} bytes: too short for a WAV file (RIFF header is 12 bytes)",
            bytes.len()
        ));
    };
    match magic {
        b"RIFF" => {}
        b"RIFX" => return Err("big-endian RIFX file: only little-endian RIFF WAV is read".into()),
        b"RF64" => return Err("RF64 (64-bit) WAV file: only RIFF WAV is read".into()),
        _ => return Err("not a WAV file: no RIFF header".into()),
    }
    if form != b"WAVE" {
        return Err(format!(
            "RIFF form {:?}: not a WAV file (expected WAVE)",
            String::from_utf8_lossy(form)
        ));
    }
    // The RIFF size counts everything after its own field.
    let riff_end = 8 + u64::from(riff_size);
    if riff_end > bytes.len() as u64 {
        return Err(format!(
            "truncated: the RIFF header says {riff_end} bytes, the file has {}",
            bytes.len()
        ));
    }
    if riff_size < 4 {
        return Err(format!(
            "RIFF size {riff_size}: too small to hold the WAVE form"
        ));
    }
    // riff_end ≤ bytes.len(), so it fits a usize; trailing bytes after it are ignored.
    let riff_end = riff_end as usize;
    let mut chunks = Chunks::default();
    let mut at = 12usize;
    while at < riff_end {
        let left = riff_end - at;
        if left < 8 {
            // One byte is a final pad byte a writer counted; more is damage.
            if left == 1 {
                break;
            }
            return Err(format!(
                "{left} stray bytes at byte {at}: too short for a chunk header"
            ));
        }
        let (Some(id), Some(size)) = (bytes.get(at..at + 4), le_u32(bytes, at + 4)) else {
            return Err(format!("chunk header at byte {at} is cut off"));
        };
        let size = size as usize;
        let body_at = at + 8;
        if size > riff_end - body_at {
            return Err(format!(
                "chunk {:?} at byte {at} claims {size} bytes but only {} remain",
                String::from_utf8_lossy(id),
                riff_end - body_at
            ));
        }
        let body = bytes
            .get(body_at..body_at + size)
            .ok_or_else(|| format!("chunk at byte {at} runs past the end of the file"))?;
        let slot = match id {
            b"fmt " => Some(&mut chunks.fmt),
            b"data" => Some(&mut chunks.data),
            b"smj0" => Some(&mut chunks.smj0),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(format!(
                    "a second {:?} chunk at byte {at}",
                    String::from_utf8_lossy(id)
                ));
            }
            *slot = Some(body);
        }
        // Chunks start on even offsets: an odd-sized body is followed by a pad
        // byte, which a writer may have left out after the last chunk.
        at = (body_at + size + size % 2).min(riff_end);
    }
    Ok(chunks)
}

/// The parts of the `fmt` chunk the decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fmt {
    encoding: WavEncoding,
    channels: u16,
    sample_rate_hz: u32,
}

impl Fmt {
    /// Bytes per frame (one sample of every channel). Fits a u16: [`parse_fmt`]
    /// checked it against the file's own block-align field.
    fn block_align(&self) -> u16 {
        self.channels
            .saturating_mul(self.encoding.bytes_per_sample())
    }
}

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of every `KSDATAFORMAT_SUBTYPE_*` GUID; bytes 0..2 hold the
/// ordinary format tag (ksmedia.h, `DEFINE_WAVEFORMATEX_GUID`).
const KSDATAFORMAT_SUBTYPE_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

fn parse_fmt(body: &[u8]) -> Result<Fmt, String> {
    let field = |at: usize| le_u16(body, at).ok_or(());
    let (Ok(tag), Ok(channels), Some(sample_rate_hz), Ok(block_align), Ok(bits)) =
        (field(0), field(2), le_u32(body, 4), field(12), field(14))
    else {
        return Err(format!(
            "fmt chunk of {} bytes: needs at least 16",
            body.len()
        ));
    };
    let (tag, valid_bits) = if tag == WAVE_FORMAT_EXTENSIBLE {
        // WAVEFORMATEXTENSIBLE: cbSize (≥ 22), valid bits per sample, channel
        // mask, and the sub-format GUID that carries the real format tag.
        let (Ok(extra), Ok(valid_bits), Some(guid)) = (field(16), field(18), body.get(24..40))
        else {
            return Err(format!(
                "WAVE_FORMAT_EXTENSIBLE fmt chunk of {} bytes: needs at least 40",
                body.len()
            ));
        };
        if extra < 22 {
            return Err(format!(
                "WAVE_FORMAT_EXTENSIBLE with cbSize {extra}: needs at least 22"
            ));
        }
        if guid.get(2..) != Some(&KSDATAFORMAT_SUBTYPE_TAIL[..]) {
            return Err("WAVE_FORMAT_EXTENSIBLE with an unknown sub-format GUID: \
                        only PCM and IEEE float are read"
                .into());
        }
        let sub_tag = le_u16(guid, 0).unwrap_or_default();
        // 0 means "not given": every bit of the container is valid.
        (sub_tag, if valid_bits == 0 { bits } else { valid_bits })
    } else {
        (tag, bits)
    };
    let encoding = match (tag, bits, valid_bits) {
        (WAVE_FORMAT_PCM, 16, 16) => WavEncoding::Int16,
        (WAVE_FORMAT_PCM, 24, 24) => WavEncoding::Int24,
        (WAVE_FORMAT_IEEE_FLOAT, 32, 32) => WavEncoding::Float32,
        (WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT, _, _) => {
            let kind = if tag == WAVE_FORMAT_PCM {
                "integer PCM"
            } else {
                "float"
            };
            let container = if valid_bits == bits {
                String::new()
            } else {
                format!(" in {bits}-bit containers")
            };
            return Err(format!(
                "{valid_bits}-bit {kind}{container}: expected 16- or 24-bit integer PCM \
                 or 32-bit float"
            ));
        }
        (other, _, _) => {
            return Err(format!(
                "format tag {other:#06x}: only integer PCM (1) and IEEE float (3) are read"
            ))
        }
    };
    if channels == 0 {
        return Err("zero channels".into());
    }
    if !SAMPLE_RATES_HZ.contains(&sample_rate_hz) {
        return Err(format!(
            "sample rate {sample_rate_hz} Hz: must be {}–{} Hz",
            SAMPLE_RATES_HZ.start(),
            SAMPLE_RATES_HZ.end()
        ));
    }
    let frame_bytes = u32::from(channels) * u32::from(encoding.bytes_per_sample());
    if u32::from(block_align) != frame_bytes {
        return Err(format!(
            "block align {block_align} bytes: {channels} channel(s) of {}-byte samples \
             take {frame_bytes}",
            encoding.bytes_per_sample()
        ));
    }
    Ok(Fmt {
        encoding,
        channels,
        sample_rate_hz,
    })
}

/// Decodes channel 0 of `data` (whole frames, checked by the caller) with hound.
fn decode_channel_0(fmt: &Fmt, data: &[u8]) -> Result<Vec<f32>, String> {
    let header = canonical_header(fmt, data.len())?;
    let mut reader = hound::WavReader::new(Read::chain(&header[..], data))
        .map_err(|e| format!("WAV decoder: {e}"))?;
    let spec = reader.spec();
    if spec.channels != fmt.channels || spec.sample_rate != fmt.sample_rate_hz {
        return Err("WAV decoder read a different header than was written".into());
    }
    let channels = usize::from(fmt.channels);
    let frames = data.len() / usize::from(fmt.block_align());
    let mut samples = Vec::with_capacity(frames);
    let decode_error = |e: hound::Error| format!("WAV data: {e}");
    match fmt.encoding {
        WavEncoding::Int16 | WavEncoding::Int24 => {
            // Full scale: the magnitude of the most negative code, 2^(bits - 1).
            let full_scale = match fmt.encoding {
                WavEncoding::Int16 => 32_768.0,
                _ => 8_388_608.0,
            };
            for s in reader.samples::<i32>().step_by(channels) {
                samples.push(s.map_err(decode_error)? as f32 / full_scale);
            }
        }
        WavEncoding::Float32 => {
            for s in reader.samples::<f32>().step_by(channels) {
                let v = s.map_err(decode_error)?;
                if !v.is_finite() {
                    return Err(format!(
                        "sample {} of channel 0 is {v}: float samples must be finite",
                        samples.len()
                    ));
                }
                samples.push(v);
            }
        }
    }
    if samples.len() != frames {
        return Err(format!(
            "WAV decoder returned {} samples of channel 0, expected {frames}",
            samples.len()
        ));
    }
    Ok(samples)
}

/// A 44-byte RIFF/WAVE header (plain PCM or float `fmt`, 16 bytes) for
/// `data_len` bytes of samples in the format `fmt`.
fn canonical_header(fmt: &Fmt, data_len: usize) -> Result<[u8; 44], String> {
    let data_len = u32::try_from(data_len)
        .ok()
        .filter(|&n| n <= u32::MAX - 36)
        .ok_or_else(|| format!("data chunk of {data_len} bytes: too large for RIFF"))?;
    let (tag, bits) = match fmt.encoding {
        WavEncoding::Int16 => (WAVE_FORMAT_PCM, 16u16),
        WavEncoding::Int24 => (WAVE_FORMAT_PCM, 24),
        WavEncoding::Float32 => (WAVE_FORMAT_IEEE_FLOAT, 32),
    };
    let block_align = fmt.block_align();
    let byte_rate = fmt.sample_rate_hz.saturating_mul(u32::from(block_align));
    let mut h = [0u8; 44];
    let mut put = |at: usize, field: &[u8]| {
        if let Some(dst) = h.get_mut(at..at + field.len()) {
            dst.copy_from_slice(field);
        }
    };
    put(0, b"RIFF");
    put(4, &(36 + data_len).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &tag.to_le_bytes());
    put(22, &fmt.channels.to_le_bytes());
    put(24, &fmt.sample_rate_hz.to_le_bytes());
    put(28, &byte_rate.to_le_bytes());
    put(32, &block_align.to_le_bytes());
    put(34, &bits.to_le_bytes());
    put(36, b"data");
    put(40, &data_len.to_le_bytes());
    Ok(h)
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(b.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Reads any folder `shotfix analyze` accepts (CONTRACT.md §3), chosen in this
/// order:
/// 1. `scene.json` present: a scene folder with an `audio` list
///    ([`scene::read_scene_audio`]);
/// 2. a `*.audio.*.wav` file: a research-layout test folder
///    ([`research::read_audio_test_folder`]);
/// 3. `*.wav` files carrying `smj0` chunks: ShotSpotter recordings
///    ([`smj0::read_smj0_folder`]).
///
/// Otherwise [`FormatError::UnknownAudioLayout`].
pub fn read_analyze_input(path: &Path) -> Result<AnalyzeInput, FormatError> {
    require_folder(path)?;
    if path.join("scene.json").is_file() {
        return scene::read_scene_audio(path);
    }
    if list_dir(path)?
        .iter()
        .any(|p| research::is_recording_wav(p))
    {
        return research::read_audio_test_folder(path);
    }
    // Reading the files is the only way to see whether they carry smj0 chunks;
    // they are read once and used as they are.
    let wavs = smj0::wav_files(path)?
        .into_iter()
        .map(|p| read_wav(&p).map(|wav| (p, wav)))
        .collect::<Result<Vec<_>, _>>()?;
    if wavs.iter().any(|(_, wav)| wav.smj0.is_some()) {
        return smj0::from_wavs(path, wavs);
    }
    Err(FormatError::UnknownAudioLayout {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;
    use std::sync::OnceLock;

    /// A RIFF chunk with its pad byte.
    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = id.to_vec();
        c.extend_from_slice(&(body.len() as u32).to_le_bytes());
        c.extend_from_slice(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(&body);
        f
    }

    fn fmt_body(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&rate.wrapping_mul(u32::from(block_align)).to_le_bytes());
        b.extend_from_slice(&block_align.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b
    }

    fn pcm16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn mono16(samples: &[i16]) -> Vec<u8> {
        riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 12_000, 2, 16)),
            chunk(b"data", &pcm16(samples)),
        ])
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    }

    fn parse(bytes: &[u8]) -> Result<Wav, FormatError> {
        parse_wav_bytes(Path::new("t.wav"), bytes)
    }

    fn err(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(w) => panic!("expected an error, read {} samples", w.samples.len()),
            Err(e) => e.to_string(),
        }
    }

    /// A real ShotSpotter recording (Chicago District 5, 2 s, with smj0).
    fn real_file() -> &'static [u8] {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../../shared/data/shotspotter-wav/\
                 ChicagoILDistrict5_783 2022-09-18 002053--Incident 556267/\
                 113adf3a6e35e664e5f2db656b030a831c8b7f11.wav",
            );
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
    }

    #[test]
    fn decodes_16_bit_to_full_scale() {
        let wav = parse(&mono16(&[0, 16_384, -32_768, 32_767])).unwrap();
        assert_eq!(wav.samples, vec![0.0, 0.5, -1.0, 32_767.0 / 32_768.0]);
        assert_eq!(
            (wav.sample_rate_hz, wav.channels, wav.encoding),
            (12_000, 1, WavEncoding::Int16)
        );
        assert!(wav.smj0.is_none());
    }

    #[test]
    fn keeps_channel_0_of_several() {
        let bytes = riff(&[
            chunk(b"fmt ", &fmt_body(1, 3, 8_000, 6, 16)),
            chunk(b"data", &pcm16(&[100, -1, -2, 200, -3, -4, -300, -5, -6])),
        ]);
        let wav = parse(&bytes).unwrap();
        assert_eq!(wav.channels, 3);
        let expected: Vec<f32> = [100.0, 200.0, -300.0]
            .iter()
            .map(|v| v / 32_768.0)
            .collect();
        assert_eq!(wav.samples, expected);
    }

    #[test]
    fn walks_odd_chunks_and_finds_smj0_after_the_data() {
        let json = br#"{"serialNumber":"S1","startTimeUTC":"2022-09-21T06:52:00.000Z",
            "geolocation":{"latitude":41.79,"longitude":-87.63,"elevation":199.8}}"#;
        let bytes = riff(&[
            chunk(b"LIST", b"odd"),
            chunk(b"fmt ", &fmt_body(1, 1, 12_000, 2, 16)),
            chunk(b"junk", &[7; 5]),
            chunk(b"data", &pcm16(&[1, 2, 3])),
            chunk(b"smj0", &zlib(json)),
        ]);
        let wav = parse(&bytes).unwrap();
        assert_eq!(wav.samples.len(), 3);
        let meta = wav.smj0.unwrap();
        assert_eq!(meta.serial_number, "S1");
        assert_eq!(meta.start.to_rfc3339(), "2022-09-21T06:52:00.000Z");
        // A final odd chunk whose pad byte the writer left out (and did not count).
        let mut bytes = riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 12_000, 2, 16)),
            chunk(b"data", &pcm16(&[1])),
            chunk(b"note", b"abc"),
        ]);
        bytes.pop();
        let riff_size = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
        assert_eq!(parse(&bytes).unwrap().samples.len(), 1);
    }

    #[test]
    fn reads_a_real_shotspotter_file() {
        let wav = parse(real_file()).unwrap();
        assert_eq!((wav.sample_rate_hz, wav.channels), (12_000, 1));
        assert_eq!(wav.samples.len(), 24_000);
        assert!(wav.samples.iter().all(|s| (-1.0..1.0).contains(s)));
        assert!(wav.samples.iter().any(|&s| s != 0.0));
        assert_eq!(wav.smj0.unwrap().serial_number, "SCP-00-BNG-4089");
    }

    /// Files written by hound (plain PCM for 16-bit mono and stereo,
    /// WAVE_FORMAT_EXTENSIBLE for 24-bit, float and more than two channels) read
    /// back to the same samples.
    #[test]
    fn round_trips_through_hounds_writer() {
        let dir = tempfile::tempdir().unwrap();
        let n = 1000;
        let wave = |i: usize| ((i as f32) * 0.01).sin() * 0.9;
        for (encoding, channels, rate) in [
            (WavEncoding::Int16, 1, 8_000),
            (WavEncoding::Int16, 2, 12_000),
            (WavEncoding::Int16, 3, 44_100),
            (WavEncoding::Int24, 1, 48_000),
            (WavEncoding::Int24, 2, 96_000),
            (WavEncoding::Float32, 1, 96_000),
            (WavEncoding::Float32, 4, 16_000),
        ] {
            let (bits, format) = match encoding {
                WavEncoding::Int16 => (16, hound::SampleFormat::Int),
                WavEncoding::Int24 => (24, hound::SampleFormat::Int),
                WavEncoding::Float32 => (32, hound::SampleFormat::Float),
            };
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: format,
            };
            let path = dir.path().join(format!("{encoding:?}-{channels}.wav"));
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            let full_scale = f64::from(1u32 << (bits - 1));
            let mut written = Vec::new();
            for i in 0..n {
                for c in 0..channels {
                    // Other channels carry something else, to catch a wrong stride.
                    let v = if c == 0 { wave(i) } else { -0.5 };
                    match encoding {
                        WavEncoding::Float32 => w.write_sample(v).unwrap(),
                        _ => {
                            let q = (f64::from(v) * full_scale).round() as i32;
                            w.write_sample(q).unwrap();
                            if c == 0 {
                                written.push((f64::from(q) / full_scale) as f32);
                            }
                        }
                    }
                }
                if encoding == WavEncoding::Float32 {
                    written.push(wave(i));
                }
            }
            w.finalize().unwrap();
            let wav = read_wav(&path).unwrap();
            assert_eq!(wav.encoding, encoding, "{}", path.display());
            assert_eq!((wav.sample_rate_hz, wav.channels), (rate, channels));
            assert_eq!(wav.samples, written, "{}", path.display());
        }
    }

    #[test]
    fn errors_name_the_rule() {
        let fmt =
            |tag, ch, rate, align, bits| chunk(b"fmt ", &fmt_body(tag, ch, rate, align, bits));
        let data = chunk(b"data", &[0; 12]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"RIFX\0\0\0\0WAVE".to_vec(), "big-endian"),
            (b"OggS".to_vec(), "too short"),
            (b"ID3\x04\0\0\0\0\0\0\0\0\0\0".to_vec(), "no RIFF header"),
            (
                riff(&[])
                    .iter()
                    .map(|&b| if b == b'W' { b'X' } else { b })
                    .collect(),
                "expected WAVE",
            ),
            (riff(std::slice::from_ref(&data)), "no fmt chunk"),
            (riff(&[fmt(1, 1, 12_000, 2, 16)]), "no data chunk"),
            (
                riff(&[fmt(1, 0, 12_000, 0, 16), data.clone()]),
                "zero channels",
            ),
            (
                riff(&[fmt(1, 1, 12_000, 1, 8), data.clone()]),
                "8-bit integer PCM",
            ),
            (
                riff(&[fmt(1, 1, 12_000, 4, 32), data.clone()]),
                "32-bit integer PCM",
            ),
            (
                riff(&[fmt(3, 1, 12_000, 8, 64), data.clone()]),
                "64-bit float",
            ),
            (
                riff(&[fmt(2, 1, 12_000, 2, 16), data.clone()]),
                "format tag 0x0002",
            ),
            (
                riff(&[fmt(1, 1, 7_999, 2, 16), data.clone()]),
                "sample rate 7999 Hz",
            ),
            (
                riff(&[fmt(1, 1, 96_001, 2, 16), data.clone()]),
                "sample rate 96001 Hz",
            ),
            (
                riff(&[fmt(1, 2, 12_000, 2, 16), data.clone()]),
                "block align 2",
            ),
            (
                riff(&[fmt(1, 1, 12_000, 3, 24), chunk(b"data", &[0; 4])]),
                "whole number of 3-byte frames",
            ),
            (
                riff(&[fmt(1, 1, 12_000, 2, 16), data.clone(), data.clone()]),
                "a second \"data\" chunk",
            ),
            (
                riff(&[chunk(b"fmt ", &[1, 0, 1, 0]), data.clone()]),
                "needs at least 16",
            ),
            (
                riff(&[
                    fmt(3, 1, 12_000, 4, 32),
                    chunk(b"data", &f32::NAN.to_le_bytes()),
                ]),
                "must be finite",
            ),
            (
                riff(&[
                    fmt(1, 1, 12_000, 2, 16),
                    data.clone(),
                    chunk(b"smj0", b"{}"),
                ]),
                "smj0 chunk: not valid zlib",
            ),
        ];
        for (bytes, rule) in cases {
            let e = err(&bytes);
            assert!(e.starts_with("t.wav: ") && e.contains(rule), "{rule}: {e}");
        }
    }

    #[test]
    fn extensible_headers_are_checked() {
        let extensible = |sub_tag: u16, bits: u16, valid: u16, tail: [u8; 14]| {
            let mut b = fmt_body(WAVE_FORMAT_EXTENSIBLE, 1, 12_000, bits / 8, bits);
            b.extend_from_slice(&22u16.to_le_bytes());
            b.extend_from_slice(&valid.to_le_bytes());
            b.extend_from_slice(&4u32.to_le_bytes());
            b.extend_from_slice(&sub_tag.to_le_bytes());
            b.extend_from_slice(&tail);
            riff(&[chunk(b"fmt ", &b), chunk(b"data", &[0; 24])])
        };
        let t = KSDATAFORMAT_SUBTYPE_TAIL;
        assert_eq!(
            parse(&extensible(1, 24, 24, t)).unwrap().encoding,
            WavEncoding::Int24
        );
        assert_eq!(
            parse(&extensible(1, 16, 0, t)).unwrap().encoding,
            WavEncoding::Int16
        );
        assert_eq!(
            parse(&extensible(3, 32, 32, t)).unwrap().encoding,
            WavEncoding::Float32
        );
        assert!(err(&extensible(1, 32, 24, t)).contains("24-bit integer PCM in 32-bit containers"));
        assert!(err(&extensible(1, 24, 24, [0; 14])).contains("unknown sub-format"));
        assert!(err(&extensible(0x55, 16, 16, t)).contains("format tag 0x0055"));
    }

    #[test]
    fn accepts_the_ends_of_the_rate_range() {
        for rate in [8_000, 96_000] {
            let bytes = riff(&[
                chunk(b"fmt ", &fmt_body(1, 1, rate, 2, 16)),
                chunk(b"data", &pcm16(&[5])),
            ]);
            assert_eq!(parse(&bytes).unwrap().sample_rate_hz, rate);
        }
    }

    /// Sizes are checked against the bytes present, so an absurd claim is a quick
    /// error rather than an allocation.
    #[test]
    fn absurd_sizes_allocate_nothing() {
        let mut bytes = mono16(&[1, 2]);
        bytes[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let riff_size = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
        assert!(err(&bytes).contains("claims 4294967280 bytes but only 4 remain"));
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&bytes).contains("truncated: the RIFF header says 4294967303 bytes"));
    }

    #[test]
    fn refuses_files_over_the_cap_before_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.wav");
        // Sparse: no gigabyte is written or read.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(MAX_WAV_BYTES + 1)
            .unwrap();
        let e = read_wav(&path).unwrap_err().to_string();
        assert!(e.contains("huge.wav") && e.contains("larger than"), "{e}");
        let e = read_wav(&dir.path().join("absent.wav"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.wav"), "{e}");
    }

    /// What a header must satisfy to be read, written out plainly: the oracle for
    /// the header proptest.
    fn readable(tag: u16, channels: u16, rate: u32, align: u16, bits: u16) -> bool {
        let bytes = match (tag, bits) {
            (1, 16) => 2,
            (1, 24) => 3,
            (3, 32) => 4,
            _ => return false,
        };
        channels > 0
            && (8_000..=96_000).contains(&rate)
            && u32::from(align) == u32::from(channels) * bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn truncated_real_files_are_errors(cut in 0usize..48_662) {
            let bytes = real_file();
            prop_assert!(cut < bytes.len());
            prop_assert!(parse(&bytes[..cut]).is_err());
        }

        #[test]
        fn flipped_bytes_never_panic(flips in proptest::collection::vec((0usize..48_662, any::<u8>()), 1..6)) {
            let mut bytes = real_file().to_vec();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Ok(wav) = parse(&bytes) {
                prop_assert!(SAMPLE_RATES_HZ.contains(&wav.sample_rate_hz));
                prop_assert!(wav.channels >= 1);
                prop_assert!(wav.samples.iter().all(|s| s.is_finite()));
            }
        }

        #[test]
        fn random_chunk_sizes_never_panic(which in 0usize..3, size in any::<u32>()) {
            // The size fields of fmt, data and smj0 in the real file.
            let at = [16usize, 40, 48_048][which];
            let mut bytes = real_file().to_vec();
            let original = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
            let result = parse(&bytes);
            let room = (bytes.len() - at - 4) as u32;
            if size > room {
                let e = result.unwrap_err().to_string();
                prop_assert!(e.contains("claims"), "{}", e);
            } else if size == original {
                prop_assert!(result.is_ok());
            }
        }

        #[test]
        fn headers_are_read_exactly_when_valid(
            tag in prop_oneof![3 => Just(1u16), 2 => Just(3), 1 => any::<u16>()],
            channels in prop_oneof![1 => Just(0u16), 6 => 1u16..5],
            rate in prop_oneof![
                3 => 8_000u32..=96_000, 1 => 7_998u32..=8_001, 1 => 95_999u32..=96_002, 1 => any::<u32>()
            ],
            bits in prop_oneof![2 => Just(16u16), 2 => Just(24), 2 => Just(32), 1 => Just(8), 1 => any::<u16>()],
            // Mostly the block align that matches; sometimes a little off.
            align_error in prop_oneof![4 => Just(0i32), 1 => -3i32..4],
            frames in 0usize..40,
        ) {
            let right = i32::from(channels) * i32::from(bits / 8);
            let align = u16::try_from((right + align_error).clamp(0, 0xFFFF)).unwrap();
            let data = vec![0u8; frames * usize::from(align.max(1))];
            let bytes = riff(&[
                chunk(b"fmt ", &fmt_body(tag, channels, rate, align, bits)),
                chunk(b"data", &data),
            ]);
            match parse(&bytes) {
                Ok(wav) => {
                    prop_assert!(readable(tag, channels, rate, align, bits));
                    prop_assert_eq!(wav.samples.len(), frames);
                    prop_assert_eq!(wav.channels, channels);
                    prop_assert!(wav.samples.iter().all(|&s| s == 0.0));
                }
                Err(e) => prop_assert!(
                    !readable(tag, channels, rate, align, bits),
                    "{}", e
                ),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&tail);
            let mut bytes = b"RIFF".to_vec();
            bytes.extend_from_slice(&(4 + tail.len() as u32).to_le_bytes());
            bytes.extend_from_slice(b"WAVE");
            bytes.extend_from_slice(&tail);
            let _ = parse(&bytes);
        }
    }
}
