"""The language codes of the Wikipedias, as Wikimedia's site matrix lists them: the prefixes
that make `[[code:Title]]` an interlanguage link (shown in the sidebar, not in the article).

Facts, not text: one code per Wikipedia (open or closed, the closed ones' links still sit in
old articles), with the non-ISO codes the wikis were created under (`zh-min-nan`, `be-x-old`,
`roa-rup`, `simple`). `be-x-old` is the former code of `be-tarask` and still links there.
A code missing here leaves a rare link as its text; a word that is no code here would take a
`[[word:Title]]` link out of the article, so nothing is added by pattern.
"""

from __future__ import annotations

WIKIPEDIA_LANGUAGE_CODES = frozenset("""
    aa ab ace ady af ak als alt am ami an ang ann anp ar arc ary arz as ast atj av avk awa ay az azb
    ba ban bar bat-smg bbc bcl be be-tarask be-x-old bew bg bh bi bjn blk bm bn bo bpy br bs btm bug
    bxr ca cbk-zam cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy da dag de dga din diq dsb
    dtp dty dv dz ee el eml en eo es et eu ext fa fat ff fi fiu-vro fj fo fon fr frp frr fur fy ga
    gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv ha hak haw he hi hif ho hr hsb ht hu
    hy hyw hz ia iba id ie ig igl ii ik ilo inh io is it iu ja jam jbo jv ka kaa kab kbd kbp kcg kg
    kge ki kj kk kl km kn knc ko koi kr krc ks ksh ku kus kv kw ky la lad lb lbe lez lfn lg li lij
    lld lmo ln lo lrc lt ltg lv mad mai map-bms mdf mg mh mhr mi min mk ml mn mni mnw mo mos mr mrj
    ms mt mus mwl my myv mzn na nah nap nds nds-nl ne new ng nia nl nn no nov nqo nr nrm nso nup nv
    ny oc olo om or os pa pag pam pap pcd pcm pdc pfl pi pih pl pms pnb pnt ps pt pwn qu rm rmy rn
    ro roa-rup roa-tara rsk ru rue rw sa sah sat sc scn sco sd se sg sh shi shn si simple sk skr sl
    sm smn sn so sq sr srn ss st stq su sv sw syl szl szy ta tay tcy tdd te tet tg th ti tig tk tl
    tly tn to tpi tr trv ts tt tum tw ty tyv udm ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal
    xh xmf yi yo za zea zgh zh zh-classical zh-min-nan zh-yue zu""".split())
