"""The run report's prose: what each section measured and how to read it, as templates the sections fill in; and
`visible`, which shows the invisible characters of text from files as escapes, on a page or a terminal.

Kept apart so the section code reads as code. Templates take named fields (``str.format``); the
numbers they state are the definitions feedtax uses (limits, spreads), never one machine's measurement.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (ESC and CSI start terminal escape sequences), and the bidi
# embeddings, overrides and isolates that reorder the text around them (U+202A-202E, U+2066-2069)
HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """text with each HIDDEN character written as its Python escape (\\x1b, \\u202e): text from a file (a run_id,
    a CPU model, a student's answer) then shows what it holds and cannot move the cursor, recolour a terminal or
    reorder a page."""
    return HIDDEN.sub(lambda m: ascii(m.group())[1:-1], text)


INCOMPLETE = "<p class='warn'>This run did not complete: the report shows what was measured before it stopped.</p>"

# --- 1. format costs --------------------------------------------------------------------------------
FORMATS_INTRO = (
    "<p>Per track, what each serialization costs: bytes on disk per sample (label: compression ratio versus the"
    " in-memory size) and decode throughput in one process. <b>Cold</b>: the shards' pages were evicted from the"
    " page cache before each read (fsync + posix_fadvise DONTNEED, checked with mincore); <b>warm</b>: read from"
    " the page cache. Bars are medians over repeats (warm-ups excluded), whiskers the interquartile range;"
    " <span class='warn'>!</span> marks a noisy measurement (spread over {spread:.0%}).</p>"
)
FORMATS_NOTE = (
    "<p class='note'>Values: median ± half the IQR. MB = 10<sup>6</sup> bytes of shard file. "
    "Encode includes writing the shards to the page cache (no fsync). A format too slow to repeat over all"
    " of a track's samples within the profile's time budget is measured on fewer whole shards"
    " (<i>samples</i>); a per-sample cost does not depend on the count.</p>"
)

# --- 2. feeding tax ---------------------------------------------------------------------------------
DATASETS = (
    "<p>This sweep read a dataset per format (<code>--dataset-size</code>), not the profile's shards: written"
    " streaming, each shard dropped from the page cache as it landed, then read once in order (its"
    " <b>first read</b>: the disk's rate on it, as fio reads a file), then every run of every point on the next"
    " shards nothing had read since, dropped from the page cache first: the feeding tax below is on cold reads."
    " <i>Wrapped</i> counts the times the points came back to the first shard; <i>not evicted</i> the windows whose"
    " pages stayed cached. This machine has {memory_gb:,.1f} GB of memory.{fits}</p>"
)
DATASETS_FIT = (" A dataset here fits in that memory: its reads were cold by eviction only, and a cache below this OS"
                " (a hypervisor's) may still have served them.")
FEEDING_INTRO = (
    "<p>Each format's shards streamed through <code>torch.utils.data.DataLoader</code> with 0..N workers into a"
    " consumer: an emulated accelerator that computes for {step_ms:g} ms per batch of"
    " {batch_size} (as MLPerf Storage/DLIO emulate one), or a real model on the GPU/CPU."
    " <a href='#g-au'><b>AU</b></a> = compute time / wall time over the measured steps (the warm-up steps"
    " excluded); <a href='#g-feeding-tax'><b>feeding tax</b></a> = 1 &minus; AU, the share of time the accelerator"
    " waits for data. The <a href='#g-flow-equilibrium'><b>flow equilibrium</b></a>"
    " is the smallest worker count (one or more: with none, loading runs in series with the consumer and"
    " always costs load / (load + step)) whose ingestion rate (the loader alone) meets the consumer's rate.</p>"
)
LOADERS_INTRO = (
    "<p>Two loaders over the same shards, decoder, transform and consumer."
    " <a href='#g-loaders'><b>default</b></a>: a torch Dataset of samples (read by index where the format allows"
    " it, else streamed) in <code>DataLoader(dataset, batch_size, num_workers)</code> with every other setting"
    " torch's default, batched by <code>default_collate</code>: what a student writes. <b>tuned</b>: feedtax's"
    " loader (batches formed from runs of a shard, handed over through reused shared-memory slots)."
    " <a href='#g-mlperf-au'><b>AU (MLPerf)</b></a> is MLPerf Storage's and DLIO's definition, to set beside a"
    " submission: the consumer's nominal step time (here the emulated step) over the wall time, the first step"
    " of each epoch left out; AU is the measured compute over all measured steps. Where the default trails by"
    " more than {gap:g} pp, its costs per batch are measured apart from the tuned loader's (fetch: reading and"
    " transforming the samples; collate: forming the batch, right after an idle as long as the consumer's step;"
    " handover: a ready batch from one worker, as the consumer waits for it) and the point is rerun with each"
    " fix a student can make.</p>"
)
LOADERS_NO_GAP = "<p>The default loader trails the tuned one by {gap:g} pp or less at every point.</p>"
LOADER_WHY = "<p>At {workers} worker(s) the consumer waits mostly on the <b>{stage}</b>: {why}.</p>"
LOADER_WHY_NONE = ("<p>No single cost of the default loader measured apart exceeds the tuned loader's where the"
                   " consumer waits for it: the gap comes from the stages together.</p>")
LOADER_BOUND = ("<p class='note'>At {workers} worker(s) the default loader alone delivers {rate:,.0f} samples/s,"
                " under the {need:,.0f} the consumer takes: its workers' own fetch and collate show as waits.</p>")
EQUILIBRIUM = (
    "<p><b>{track}</b>: the consumer takes {rate:,.0f} samples/s; flow equilibrium: {equilibrium}. At the"
    " equilibrium the loader keeps up on average, so what tax remains there is what the consumer still waits for"
    " per step: each batch's handover from its worker (the transport cost below) and the steps where a batch"
    " arrives late.</p>"
)
TRANSPORT_FULL_SPEED = (
    " At full speed (no consumer) one worker hands over a batch every {worker_ms:.2f} ms,"
    " against {in_process_ms:.2f} ms to make it in the main process: the handover adds"
    " {ipc_ms:.2f} ms{noise}."
)
TRANSPORT_NO_COST = " (no cost beyond noise)"
TRANSPORT = (
    "<p class='note'>The DataLoader's own transport, with a ready batch of {batch_size}"
    " ({batch_kb:,.0f} kB), not decode.{full_speed} Behind the consumer, each step waits"
    " {wait_ms:.2f} ms for a batch a worker already made (the main process's receive).</p>"
)
MFU_PEAK = "<p class='note'>MFU is taken against {source} ({tflops:,.1f} TFLOP/s).</p>"
MFU_NO_PEAK = "<p class='note'>No MFU: the device's peak is {source}.</p>"
NVML_ABSENT = "<p class='note'>NVML: {reason}.</p>"
NVML_IDLE = (
    "<p class='note'>NVML idle is 1 − utilization.gpu, NVML's coarse duty cycle (the share of each"
    " sample period in which any kernel ran, not how full the SMs were): set it against the feeding"
    " tax, which is measured by timing each step.</p>"
)
OVERHEAD = (
    "<p class='note'>feedtax's loader at one worker (no consumer, no transform) against what a user writes"
    " without it: a plain <code>torch.utils.data.DataLoader(num_workers=1)</code> over the same shards, decoded"
    " by the same codec and batched by torch's <code>default_collate</code>. Both run in rounds that alternate"
    " (paired: the median of per-round ratios, so a busy moment hits both), at the sweep's batch and at a batch"
    " large enough (about 10 ms of decoding) to amortize the DataLoader's fixed cost per batch. The <i>overhead"
    " check</i> (its last column: &#10003; holds, &#10007; fails, — not measured) asks for at least"
    " {plain_target:.2f}&times; the plain loader's rate at both batches and, at the amortized batch, at least"
    " {target:.2f} of the one-process decode rate, but only for formats whose decode costs enough more per byte"
    " than one memory copy for a loader to reach it.</p>"
)
OVERHEAD_APPLIES = (
    "<p class='note'>A loader that batches copies every byte once on top of decoding it, and at one worker the"
    " two run in series: a worker gets at most decode / (decode + copy) of the decode rate (<i>decode share"
    " with one copy</i>). So the decode target ({target:.2f}) applies only where that share reaches it, where"
    " decoding a byte costs at least {copies:.0f} copies of it. Both are measured here: the paired decode rate"
    " over the sample's in-memory bytes, and a copy of the amortized batch's bytes between two buffers already"
    " touched, the cheapest copy there is, so no format is let off for a copy dearer than the one it makes."
    " It applies to {applies}.{exempt}</p>"
)
OVERHEAD_EXEMPT = (
    " It does not apply to {formats}: their decode barely touches the bytes, so even a loader whose only cost"
    " is the one copy stays under the target; the split of the worker's batch time below shows that copy."
)
OVERHEAD_NO_PLAIN = (
    "<p class='note'>This run was measured before the plain DataLoader baseline: only the ratios against decode"
    " are in it, and no verdict of the overhead check.</p>"
)
OVERHEAD_DECODE = (
    "<p class='note'>Against decode: the format stage's figure, and the same decode re-measured in the rounds."
    " The DataLoader's fixed cost per batch is fitted from the two batches; at the sweep's batch, fast formats"
    " decode a batch in less time than torch's DataLoader takes to hand it over. “No worker” forms the batches in"
    " this process: what batching itself costs (keeping a batch of samples alive and the one copy that makes it"
    " contiguous) apart from the transport. Where the no-worker ratio is as low as the loader's, forming the"
    " batch is the limit, not the transport. The split of one worker's batch time (the worker's own clock)"
    " shows the same: decode, the copy into the slot, and what remains, the DataLoader's per-batch cost.</p>"
)

# --- 3. missions ------------------------------------------------------------------------------------
MISSIONS_INTRO = (
    "<p>The measured numbers above, fed as calibration into the course's own models (<a href='#g-mlsysim'>mlsysim</a>'s"
    " <code>evaluate_pipeline</code>, <code>DataModel</code>, <code>TransformationModel</code>), answer each track's"
    " mission. Every input names its source: <i>measured</i> here, <i>mlsysim:</i> a registry value, or"
    " <i>assumption:</i> an entry of the assumptions file (listed at the end; change one with"
    " <code>--assume key=value</code> and <code>feedtax project</code>). Each verdict turns on its"
    " <a href='#g-binding'>binding constraint</a>, the check with the least headroom.</p>"
)
FITS_NOTE = ("<p class='note'><a href='#g-usl'>USL</a> fit per format, each figure with its"
             " <a href='#g-usl-interval'>95% interval</a>; a prediction is read only where it is narrow.</p>")
MISSION_SUMMARY = (
    "<p class='note'>Headline format: {format}; pipeline bottleneck: {bottleneck},"
    " accelerator waiting {wait:.0%} of the time.</p>"
)
ALTERNATIVE = (
    "<p>Alternative <b>{name}</b>: {bytes_per_frame:,.0f} bytes per frame,"
    " radio {radio_mw:,.1f} mW, transmission energy cut {cut:.0%}"
    " ({verdict} the 50% cut).</p>"
)
VALIDATION = (
    "<p class='note'>For every sweep point: the pipeline model's feeding tax, predicted from the measured stage rates"
    " (a worker's decode, transform and collate in series, times the workers, against the consumer's demand; plus"
    " the measured per-batch transport each step waits for), against the feeding tax measured end to end. Errors"
    " over {limit:g} percentage points are flagged with the likely reason.</p>"
)

# --- 4. data gravity, 5. zero waste, assumptions ------------------------------------------------------
GRAVITY = (
    "<p class='note'>{definition}. Drives are written and read at this machine's measured disk bandwidth"
    " unless a storage tier is chosen (<code>feedtax gravity --tier</code>).</p>"
)
SELECTION = (
    "<p class='note'>A real training run per setting (seeded); the best accuracy any classifier can reach here is"
    " {bayes:.1%}. Energy: {energy_source}.</p>"
)
ASSUMPTIONS = (
    "<p class='note'>What neither this machine measures nor mlsysim provides. Override any with"
    " <code>--assume key=value</code> (on <code>feedtax run</code> or <code>feedtax project</code>).</p>"
)

# --- the machine's probes -----------------------------------------------------------------------------
DISK = (
    "<p class='note'>{path} on {fs_type}; test file {size_mb:,.0f} MB,"
    " {block_kib} KiB blocks; MB = 10<sup>6</sup> bytes. Cold reads: {cache_method}"
    " ({evicted}).</p>"
)
ENERGY = (
    "<p class='note'>Read over the measuring stages ({window_s:,.1f} s). Absent counters are reported"
    " as absent, never estimated here.</p>"
)

# --- glossary (each term once; the report links to it from where the term is first used) ---------------------
GLOSSARY: dict[str, tuple[str, str]] = {
    "au": ("AU (accelerator utilization)",
           "the share of the consumer's wall time spent computing: measured compute over the measured steps' wall "
           "time, warm-up steps excluded, every epoch start counted (a student's loop pays it)."),
    "mlperf-au": ("AU (MLPerf)",
                  "MLPerf Storage's and DLIO's definition: the nominal compute time (the emulated step) over the wall "
                  "time, with the first step of each epoch left out of both. Set it beside an MLPerf Storage "
                  "submission; feedtax's AU is lower where epoch starts cost time and where a sleep overshoots."),
    "feeding-tax": ("feeding tax", "1 − AU: the share of time the accelerator waits for data."),
    "mfu": ("MFU (model FLOPs utilization)",
            "achieved FLOP/s of a real model over the device's peak at the model's precision; absent where either "
            "is unknown."),
    "loaders": ("default and tuned loaders",
                "default: torch's DataLoader as a student writes it (a Dataset of samples, default_collate, "
                "default settings); tuned: feedtax's loader (batches formed from runs of a shard, reused "
                "shared-memory slots)."),
    "flow-equilibrium": ("flow equilibrium",
                         "the fewest DataLoader workers (one or more) whose loader alone delivers at least what the "
                         "consumer takes."),
    "usl": ("USL (Universal Scalability Law)",
            "Gunther's model of throughput against workers, X(N) = λN / (1 + σ(N − 1) + κN(N − 1)): σ is contention "
            "(work that serializes), κ coherency (crosstalk that grows with pairs of workers)."),
    "usl-interval": ("95% interval of a fit",
                     "each measured rate's interval comes from its run's step-to-step spread (a block bootstrap over "
                     "the steps); the fit is redone over 300 draws of the rates within those intervals. A prediction "
                     "is drawn and read only where its interval is at most half its value, and no further than twice "
                     "the most workers measured. Run-to-run drift is not in these intervals."),
    "binding": ("binding constraint and slowest stage",
                "a mission's binding constraint is the check with the least headroom, the one its verdict turns on; "
                "a pipeline's slowest stage (read, decode, transform) is the one that limits its rate. The two "
                "differ when the verdict turns on something other than feeding, such as memory."),
    "tracks": ("tracks", "the course's four deployments and their data: cloud (token sequences), edge (camera "
               "frames), mobile (crops and text), tiny (audio)."),
    "missions": ("missions", "each track's target system projected from this machine's measurements: an H100 "
                 "(cloud), a Jetson Orin (edge), AR glasses (mobile), a hearable microcontroller (tiny)."),
    "mlsysim": ("mlsysim", "the course's modelling package: hardware registry, pipeline and storage models that "
                "turn the measured rates into the missions' verdicts."),
    "sneakernet": ("sneakernet and data gravity",
                   "shipping drives instead of sending data over a network; data gravity is the cost of moving a "
                   "large dataset, which pulls compute to where the data is."),
}
