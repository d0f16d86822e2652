"""What to cite: the papers whose metrics, models and data a protocol (and so a result) relies on.

Each BibTeX entry is the one the authors publish (their repository's README), copied as
published; where the authors publish a plain-text reference only, the entry holds exactly the
fields that text gives (PANNs, FAD, VGGish, fadtk) and nothing more. References without a
verified BibTeX (standards, toolkits) are listed as the protocol files cite them. `d2m-bench cite` prints them; the
docs page docs/cite.md lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    key: str
    what: str  # what d2m-bench takes from it
    source: str  # where the entry below was taken from
    bibtex: str | None = None
    text: str | None = None  # a plain reference where no BibTeX is verified


PAPERS = {p.key: p for p in [
    Paper("yezhu2022quantizedgan", "D2M-GAN: Beats Coverage / Hit, the 2-s AIST++ and TikTok settings, the TikTok data",
          "https://github.com/L-YeZhu/D2M-GAN (README, Citation)",
          """@article{yezhu2022quantizedgan,
  title={Quantized GAN for Complex Music Generation from Dance Videos},
  author={Zhu, Ye and Olszewski, Kyle and Wu, Yu and Achlioptas, Panos and Chai, Menglei and Yan, Yan and Tulyakov, Sergey},
  journal={arXiv preprint arXiv:2204.00604},
  year={2022}
}"""),
    Paper("Yu2023Long", "LORIS: the LORIS beat variant (precision / recall bins, F1)",
          "https://github.com/OpenGVLab/LORIS (README, Citation)",
          """@inproceedings{Yu2023Long,
title={Long-Term Rhythmic Video Soundtracker},
author={Yu, Jiashuo and Wang, Yaohui and Chen, Xinyuan and Sun, Xiao and Qiao, Yu },
booktitle={International Conference on Machine Learning (ICML)},
year={2023}
}"""),
    Paper("li2021dance", "AI Choreographer: the AIST++ dataset and FACT BeatAlign",
          "https://github.com/google-research/mint (README, Citation)",
          """@inproceedings{li2021dance,
  title={AI Choreographer: Music Conditioned 3D Dance Generation with AIST++},
  author={Ruilong Li and Shan Yang and David A. Ross and Angjoo Kanazawa},
  booktitle = {The IEEE International Conference on Computer Vision (ICCV)},
  year = {2021}
}"""),
    # The README's entry lacks the closing brace of its title; it is closed here, nothing else changed.
    Paper("siyao2022bailando", "Bailando: the Beat Align Score (BAS)",
          "https://github.com/lisiyao21/Bailando (README, Citation)",
          """@inproceedings{siyao2022bailando,
    title={Bailando: 3D dance generation via Actor-Critic GPT with Choreographic Memory},
    author={Siyao, Li and Yu, Weijiang and Gu, Tianpei and Lin, Chunze and Wang, Quan and Qian, Chen and Loy, Chen Change and Liu, Ziwei },
    booktitle={CVPR},
    year={2022}
}"""),
    Paper("hershey2017cnn", "VGGish: the embedder of genre accuracy and FAD",
          "the ICASSP 2017 paper's title page and IEEE record (DOI 10.1109/ICASSP.2017.7952132)",
          """@inproceedings{hershey2017cnn,
  title={{CNN} Architectures for Large-Scale Audio Classification},
  author={Hershey, Shawn and Chaudhuri, Sourish and Ellis, Daniel P. W. and Gemmeke, Jort F. and Jansen, Aren and Moore, R. Channing and Plakal, Manoj and Platt, Devin and Saurous, Rif A. and Seybold, Bryan and Slaney, Malcolm and Weiss, Ron J. and Wilson, Kevin},
  booktitle={IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages={131--135},
  year={2017},
  doi={10.1109/ICASSP.2017.7952132}
}"""),
    Paper("kilgour2018fad", "Frechet Audio Distance (FAD)",
          "arXiv:1812.08466 (title page)",
          """@article{kilgour2018fad,
  title={Fr{\\'e}chet Audio Distance: A Metric for Evaluating Music Enhancement Algorithms},
  author={Kilgour, Kevin and Zuluaga, Mauricio and Roblek, Dominik and Sharifi, Matthew},
  journal={arXiv preprint arXiv:1812.08466},
  year={2018}
}"""),
    Paper("fadtk2023", "fadtk: FAD-inf (FAD extrapolated to infinite sample size) and its FD embedder settings",
          "arXiv:2311.01616 (title page; authors not transcribed here)",
          """@misc{fadtk2023,
  title={Adapting Frechet Audio Distance for Generative Music Evaluation},
  eprint={2311.01616},
  archivePrefix={arXiv},
  year={2023}
}"""),
    Paper("kong2019panns", "PANNs CNN14: FD embeddings, KL and Inception Score labels",
          "https://github.com/qiuqiangkong/panns_inference (README, Cite: a plain-text reference)",
          """@article{kong2019panns,
  title={{PANNs}: Large-Scale Pretrained Audio Neural Networks for Audio Pattern Recognition},
  author={Kong, Qiuqiang and Cao, Yin and Iqbal, Turab and Wang, Yuxuan and Wang, Wenwu and Plumbley, Mark D.},
  journal={arXiv preprint arXiv:1912.10211},
  year={2019}
}"""),
    Paper("koutini22passt", "PaSST: KL divergence of its label distributions",
          "https://github.com/kkoutini/PaSST (README, Citation)",
          """@inproceedings{koutini22passt,
  author       = {Khaled Koutini and
                  Jan Schl{\\"{u}}ter and
                  Hamid Eghbal{-}zadeh and
                  Gerhard Widmer},
  title        = {Efficient Training of Audio Transformers with Patchout},
  booktitle    = {Interspeech 2022, 23rd Annual Conference of the International Speech
                  Communication Association, Incheon, Korea, 18-22 September 2022},
  pages        = {2753--2757},
  publisher    = {{ISCA}},
  year         = {2022},
  url          = {https://doi.org/10.21437/Interspeech.2022-227},
  doi          = {10.21437/Interspeech.2022-227},
}"""),
    Paper("li2023mert", "MERT-v1: FD embeddings",
          "https://github.com/yizhilll/MERT (README, Citation)",
          """@misc{li2023mert,
      title={MERT: Acoustic Music Understanding Model with Large-Scale Self-supervised Training},
      author={Yizhi Li and Ruibin Yuan and Ge Zhang and Yinghao Ma and Xingran Chen and Hanzhi Yin and Chenghua Lin and Anton Ragni and Emmanouil Benetos and Norbert Gyenge and Roger Dannenberg and Ruibo Liu and Wenhu Chen and Gus Xia and Yemin Shi and Wenhao Huang and Yike Guo and Jie Fu},
      year={2023},
      eprint={2306.00107},
      archivePrefix={arXiv},
      primaryClass={cs.SD}
}"""),
    Paper("laionclap2023", "LAION CLAP: FD embeddings and the CLAP score",
          "https://github.com/LAION-AI/CLAP (README, Citation)",
          """@inproceedings{laionclap2023,
  title = {Large-scale Contrastive Language-Audio Pretraining with Feature Fusion and Keyword-to-Caption Augmentation},
  author = {Wu*, Yusong and Chen*, Ke and Zhang*, Tianyu and Hui*, Yuchen and Berg-Kirkpatrick, Taylor and Dubnov, Shlomo},
  booktitle={IEEE International Conference on Acoustics, Speech and Signal Processing, ICASSP},
  year = {2023}
}"""),
    Paper("htsatke2022", "HTS-AT: the audio encoder of the LAION CLAP checkpoints (LAION asks for both)",
          "https://github.com/LAION-AI/CLAP (README, Citation)",
          """@inproceedings{htsatke2022,
  author = {Ke Chen and Xingjian Du and Bilei Zhu and Zejun Ma and Taylor Berg-Kirkpatrick and Shlomo Dubnov},
  title = {HTS-AT: A Hierarchical Token-Semantic Audio Transformer for Sound Classification and Detection},
  booktitle={IEEE International Conference on Acoustics, Speech and Signal Processing, ICASSP},
  year = {2022}
}"""),
    Paper("defossez2022highfi", "EnCodec: FD embeddings",
          "https://github.com/facebookresearch/encodec (README, Citation)",
          """@article{defossez2022highfi,
  title={High Fidelity Neural Audio Compression},
  author={D\\'efossez, Alexandre and Copet, Jade and Synnaeve, Gabriel and Adi, Yossi},
  journal={arXiv preprint arXiv:2210.13438},
  year={2022}
}"""),
    Paper("mir_eval", "tolerance: one-to-one onset matching as mir_eval.util.match_events",
          "protocols/tolerance.toml", text="mir_eval (Raffel et al., ISMIR 2014); BibTeX not verified here"),
    Paper("inception_kl", "Inception Score and KL conventions of the text-to-audio toolkits",
          "protocols/v2m-audio.toml", text="audioldm_eval (Liu et al. 2023) KL and IS; stable-audio-metrics "
                                            "(Evans et al. 2024) KL on PaSST and CLAP score; BibTeX not verified here"),
    Paper("itu_p808", "MOS: 5-point ACR and crowdsourced listening-test practice",
          "protocols/mos-p808.toml", text="ITU-T P.800 (1996) ACR; ITU-T P.808 (2021) crowdsourcing practices; "
                                           "BibTeX not verified here"),
]}

#: d2m-bench itself (the same as CITATION.cff, which the wheel does not ship)
TOOL_BIBTEX = """@software{d2m_bench,
  title={d2m-bench: benchmark and evaluation toolkit for dance-to-music generation},
  author={{d2m-bench contributors}},
  version={%s},
  license={MIT}
}"""

#: embedder name -> the papers of its model
EMBEDDER_PAPERS = {
    "vggish": ["hershey2017cnn"], "panns-cnn14": ["kong2019panns"], "panns-cnn14-16k": ["kong2019panns"],
    "encodec-24k": ["defossez2022highfi"], "mert-v1-95m": ["li2023mert"], "mert-v1-330m": ["li2023mert"],
    "clap-laion-music": ["laionclap2023", "htsatke2022"], "clap-laion-audio": ["laionclap2023", "htsatke2022"],
    "passt-s-f128-p16-s10": ["koutini22passt"], "mfcc-chroma": [],
}


def papers_for_protocol(protocol) -> list:
    """The papers a result under ``protocol`` (a name, a TOML path or a Protocol) relies on, in
    the order its sections run: beats, genre, alignment, FD, KL, Inception Score, CLAP, MOS."""
    from .protocol import load_protocol

    p = load_protocol(protocol)
    return _papers(p.name, p.command, p.to_dict().get("params") or {})


def papers_for_result(doc: dict) -> list:
    """The papers an eval result relies on: its protocol's, less the sections it did not score
    (a genre section skipped for want of a dataset cites no embedder)."""
    proto = doc.get("protocol") if isinstance(doc.get("protocol"), dict) else {}
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (proto.get("params") or {}).items()}
    sections = doc.get("sections") if isinstance(doc.get("sections"), dict) else {}
    for name, sec in sections.items():
        if isinstance(params.get(name), dict) and isinstance(sec, dict) and sec.get("status") != "ok":
            params[name]["enabled"] = False
    return _papers(str(proto.get("name", "")), "eval", params)


def _papers(name: str, command: str, params: dict) -> list:
    keys: list = []

    def add(*names):
        keys.extend(n for n in names if n not in keys)

    if command == "mos":
        add("itu_p808")
    variant = (params.get("beats") or {}).get("variant")
    add(*{"d2m": ["yezhu2022quantizedgan"], "loris": ["Yu2023Long"], "tolerance": ["mir_eval"]}.get(variant, []))
    if "aistpp" in name or "tiktok" in name:
        add("yezhu2022quantizedgan")  # the segment lists and settings of the D2M-GAN paper
    if "aistpp" in name:
        add("li2021dance")  # the AIST++ dataset
    genre = params.get("genre") or {}
    if genre.get("enabled"):
        add(*EMBEDDER_PAPERS.get(genre.get("embedder", "vggish"), []), "kilgour2018fad", "fadtk2023")
    if (params.get("alignment") or {}).get("enabled"):
        add("li2021dance", "siyao2022bailando")
    fd = params.get("fd") or {}
    if fd.get("enabled"):
        add("kilgour2018fad", "fadtk2023")
        for e in fd.get("embedders") or []:
            add(*EMBEDDER_PAPERS.get(e, []))
    if (params.get("kl") or {}).get("enabled"):
        add("kong2019panns", "koutini22passt", "inception_kl")
    if (params.get("inception") or {}).get("enabled"):
        add("kong2019panns", "inception_kl")
    clap = params.get("clap") or {}
    if clap.get("enabled"):
        add(*EMBEDDER_PAPERS.get(clap.get("embedder", "clap-laion-music"), []), "inception_kl")
    return [PAPERS[k] for k in keys]


def bibtex(papers) -> str:
    """The BibTeX entries of ``papers``, then the text-only references as BibTeX comments."""
    entries = [p.bibtex for p in papers if p.bibtex]
    notes = [f"% {p.key}: {p.text}" for p in papers if not p.bibtex]
    return "\n\n".join(entries + (["\n".join(notes)] if notes else [])) + "\n"


def docs_page() -> str:
    """docs/cite.md, generated from PAPERS (test_docs checks the committed page against it)."""
    from .protocol import available_protocols

    parts = ["# Citing", "",
             "<!-- generated by d2m_bench.citations.docs_page(); `python -m d2m_bench.citations > docs/cite.md` -->",
             "",
             "Cite d2m-bench itself (its `CITATION.cff`, in the [Citation File Format](https://citation-file-format.github.io/),",
             "sits at the top of the repository) and the papers whose metrics, models and data your numbers rely",
             "on. `d2m-bench cite --protocol NAME` prints exactly those of one protocol, `d2m-bench cite --result",
             "FILE` those of one result (its protocol less the sections it skipped), `d2m-bench cite` all of them.",
             "",
             "Each entry is the BibTeX its authors publish, from the source named under it; where they publish a",
             "plain reference only, the entry holds exactly the fields it gives. References without a verified",
             "BibTeX are listed as the protocol files cite them.",
             "",
             "## Which protocol relies on which paper", "",
             "| protocol | papers |", "|---|---|"]
    for name, proto in available_protocols().items():
        keys = ", ".join(f"`{p.key}`" for p in papers_for_protocol(proto))
        parts.append(f"| `{name}` | {keys} |")
    parts += ["", "## d2m-bench", "", "```bibtex", TOOL_BIBTEX % "VERSION", "```", ""]
    for p in PAPERS.values():
        parts += [f"## `{p.key}`", "", f"{p.what}. Source: {p.source}.", ""]
        if p.bibtex:
            parts += ["```bibtex", p.bibtex, "```", ""]
        else:
            parts += [f"{p.text}.", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(docs_page(), end="")
