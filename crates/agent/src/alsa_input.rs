//! Live capture through ALSA (the `alsa` cargo feature): interleaved 16-bit
//! samples from a capture device, channel 0 kept, each period stamped with the
//! system clock when it arrives. An overrun (the agent fell behind) is
//! counted, the device restarted, and capture goes on.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};
use model::UtcNanos;

use crate::input::{Source, Timing, BLOCK_S};

pub struct AlsaSource {
    pcm: PCM,
    rate: u32,
    channels: usize,
    frames: Vec<i16>,
    overruns: u64,
}

impl std::fmt::Debug for AlsaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaSource")
            .field("rate", &self.rate)
            .finish()
    }
}

impl AlsaSource {
    pub fn open(device: &str, rate: u32, channels: u16) -> Result<AlsaSource, String> {
        let err = |what: &str, e: alsa::Error| format!("ALSA device {device:?}: {what}: {e}");
        let pcm = PCM::new(device, Direction::Capture, false).map_err(|e| err("open", e))?;
        {
            let hw = HwParams::any(&pcm).map_err(|e| err("parameters", e))?;
            hw.set_channels(u32::from(channels))
                .map_err(|e| err("channels", e))?;
            hw.set_rate(rate, ValueOr::Nearest)
                .map_err(|e| err("sample rate", e))?;
            hw.set_format(Format::s16()).map_err(|e| err("format", e))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(|e| err("access", e))?;
            // A second of device buffer rides out a slow disk write.
            hw.set_buffer_size_near(i64::from(rate))
                .map_err(|e| err("buffer", e))?;
            pcm.hw_params(&hw).map_err(|e| err("parameters", e))?;
            let got = hw.get_rate().map_err(|e| err("sample rate", e))?;
            if got != rate {
                return Err(format!(
                    "ALSA device {device:?}: asked for {rate} Hz, the device gives {got} Hz"
                ));
            }
        }
        pcm.start().map_err(|e| err("start", e))?;
        let frames = (BLOCK_S * f64::from(rate)).round() as usize;
        Ok(AlsaSource {
            pcm,
            rate,
            channels: usize::from(channels.max(1)),
            frames: vec![0; frames * usize::from(channels.max(1))],
            overruns: 0,
        })
    }
}

impl Source for AlsaSource {
    fn sample_rate_hz(&self) -> u32 {
        self.rate
    }

    fn timing(&self) -> Timing {
        Timing::Live
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<Option<UtcNanos>>, String> {
        out.clear();
        let io = self.pcm.io_i16().map_err(|e| format!("ALSA: {e}"))?;
        loop {
            match io.readi(&mut self.frames) {
                Ok(n) => {
                    let arrived = crate::now();
                    out.extend(
                        self.frames[..n * self.channels]
                            .chunks_exact(self.channels)
                            .map(|f| f32::from(f[0]) / 32_768.0),
                    );
                    return Ok(Some(Some(arrived)));
                }
                Err(e) => {
                    // An overrun (EPIPE) or a suspend: recover and go on.
                    self.overruns += 1;
                    self.pcm
                        .try_recover(e, true)
                        .map_err(|e| format!("ALSA: {e}"))?;
                }
            }
        }
    }

    fn overruns(&self) -> u64 {
        self.overruns
    }
}
