"""Sentences of the bundled demo corpus, written for this project in the style of Changsha-dialect clips.

Each line pairs the text (with Chinese punctuation, as in CS-Mage's ``raw_text``) with tone-numbered
pinyin for espeak-ng's ``cmn-latn-pinyin`` voice (tone 5 is the neutral tone; ``v`` is ü). The pinyin
is hand-written, so dialect words get a stable reading: 么子 mo2 zi5, 冇得 mao3 de2, 伢唧 ya2 ji1,
娭毑 ai1 jie3, and the particles 啰 luo5, 咯 lo5, 嘞 lei5, 噻 sai5, 咧 lie5, 呢 ne5, 哒 da5.

>>> DEMO_LINES[0].text
'今天恰么子饭啰？'
>>> len(DEMO_SENTENCES) == len(DEMO_LINES)
True
"""

from __future__ import annotations

from typing import NamedTuple


class DemoSentence(NamedTuple):
    """One demo sentence: ``text`` as transcribed, ``pinyin`` as fed to espeak-ng."""

    text: str
    pinyin: str


# Changsha sentence-final particles that the demo sentences are meant to exercise.
PARTICLES: tuple[str, ...] = ("啰", "咯", "嘞", "噻", "咧", "呢", "哒")

DEMO_LINES: tuple[DemoSentence, ...] = (
    # food
    DemoSentence("今天恰么子饭啰？", "jin1 tian1 qia4 mo2 zi5 fan4 luo5?"),
    DemoSentence("这碗米粉好恰得很！", "zhe4 wan3 mi3 fen3 hao3 qia4 de2 hen3!"),
    DemoSentence("臭豆腐要多放点辣椒咯。", "chou4 dou4 fu5 yao4 duo1 fang4 dian3 la4 jiao1 lo5."),
    DemoSentence("冇得饭恰哒，点外卖噻。", "mao3 de2 fan4 qia4 da5, dian3 wai4 mai4 sai5."),
    DemoSentence("口味虾还冇剥完咧。", "kou3 wei4 xia1 hai2 mao3 bo1 wan2 lie5."),
    DemoSentence("娭毑煮的粥最香哒。", "ai1 jie3 zhu3 de5 zhou1 zui4 xiang1 da5."),
    DemoSentence("糖油粑粑趁热恰啰！", "tang2 you2 ba1 ba1 chen4 re4 qia4 luo5!"),
    DemoSentence("莫恰这么多冰的东西嘞。", "mo4 qia4 zhe4 me5 duo1 bing1 de5 dong1 xi5 lei5."),
    DemoSentence("茶颜悦色排队排到哪里去哒？", "cha2 yan2 yue4 se4 pai2 dui4 pai2 dao4 na3 li3 qu4 da5?"),
    DemoSentence("晚上去坡子街恰夜宵噻。", "wan3 shang5 qu4 po1 zi5 jie1 qia4 ye4 xiao1 sai5."),
    # family
    DemoSentence("伢唧今天又冇写作业。", "ya2 ji1 jin1 tian1 you4 mao3 xie3 zuo4 ye4."),
    DemoSentence("我老倌到现在还冇回来咧。", "wo3 lao3 guan1 dao4 xian4 zai4 hai2 mao3 hui2 lai2 lie5."),
    DemoSentence("堂客喊你回去恰饭啰！", "tang2 ke4 han3 ni3 hui2 qu4 qia4 fan4 luo5!"),
    DemoSentence("娭毑过生日，全家都来哒。", "ai1 jie3 guo4 sheng1 ri4, quan2 jia1 dou1 lai2 da5."),
    DemoSentence("细伢子莫在屋里跑咯。", "xi4 ya2 zi5 mo4 zai4 wu1 li3 pao3 lo5."),
    DemoSentence("我屋里老弟蛮听话的嘞。", "wo3 wu1 li3 lao3 di4 man2 ting1 hua4 de5 lei5."),
    DemoSentence("爸爸咧，明天带我去公园噻。", "ba4 ba5 lie5, ming2 tian1 dai4 wo3 qu4 gong1 yuan2 sai5."),
    DemoSentence("妈妈讲要得，我们就去。", "ma1 ma5 jiang3 yao4 de2, wo3 men5 jiu4 qu4."),
    DemoSentence("外婆屋里养哒一只猫。", "wai4 po2 wu1 li3 yang3 da5 yi4 zhi1 mao1."),
    DemoSentence("你们两兄弟莫吵哒啰。", "ni3 men5 liang3 xiong1 di4 mo4 chao3 da5 luo5."),
    # weather
    DemoSentence("今天好热，热得冒烟哒！", "jin1 tian1 hao3 re4, re4 de5 mao4 yan1 da5!"),
    DemoSentence("外面落雨哒，带把伞噻。", "wai4 mian4 luo4 yu3 da5, dai4 ba3 san3 sai5."),
    DemoSentence("长沙的冬天冷得要死咧。", "chang2 sha1 de5 dong1 tian1 leng3 de5 yao4 si3 lie5."),
    DemoSentence("明天会不会出太阳呢？", "ming2 tian1 hui4 bu2 hui4 chu1 tai4 yang2 ne5?"),
    DemoSentence("这风大得很，衣服都吹跑哒。", "zhe4 feng1 da4 de2 hen3, yi1 fu5 dou1 chui1 pao3 da5."),
    DemoSentence("今年夏天冇落几场雨咧。", "jin1 nian2 xia4 tian1 mao3 luo4 ji3 chang3 yu3 lie5."),
    DemoSentence("早上起雾哒，看不清路咯。", "zao3 shang5 qi3 wu4 da5, kan4 bu5 qing1 lu4 lo5."),
    DemoSentence("下雪哒，伢唧们都出去玩哒。", "xia4 xue3 da5, ya2 ji1 men5 dou1 chu1 qu4 wan2 da5."),
    # shopping
    DemoSentence("这件衣服好多钱一件啰？", "zhe4 jian4 yi1 fu5 hao3 duo1 qian2 yi2 jian4 luo5?"),
    DemoSentence("老板，便宜点要得啵？", "lao3 ban3, pian2 yi5 dian3 yao4 de2 bo5?"),
    DemoSentence("超市里的白菜涨价哒。", "chao1 shi4 li3 de5 bai2 cai4 zhang3 jia4 da5."),
    DemoSentence("买这么多东西，拿不动哒。", "mai3 zhe4 me5 duo1 dong1 xi5, na2 bu2 dong4 da5."),
    DemoSentence("这双鞋子穿起蛮舒服的嘞。", "zhe4 shuang1 xie2 zi5 chuan1 qi3 man2 shu1 fu5 de5 lei5."),
    DemoSentence("网上买的东西还冇到咧。", "wang3 shang4 mai3 de5 dong1 xi5 hai2 mao3 dao4 lie5."),
    DemoSentence("菜市场的鱼好新鲜嘞！", "cai4 shi4 chang3 de5 yu2 hao3 xin1 xian1 lei5!"),
    DemoSentence("莫乱花钱，存起来噻。", "mo4 luan4 hua1 qian2, cun2 qi3 lai2 sai5."),
    DemoSentence("五块钱三斤，你要不要呢？", "wu3 kuai4 qian2 san1 jin1, ni3 yao4 bu2 yao4 ne5?"),
    # traffic
    DemoSentence("五一广场又堵车哒！", "wu3 yi1 guang3 chang3 you4 du3 che1 da5!"),
    DemoSentence("地铁二号线人好多咧。", "di4 tie3 er4 hao4 xian4 ren2 hao3 duo1 lie5."),
    DemoSentence("师傅，到火车站要好久啰？", "shi1 fu5, dao4 huo3 che1 zhan4 yao4 hao3 jiu3 luo5?"),
    DemoSentence("骑电动车要戴头盔咯。", "qi2 dian4 dong4 che1 yao4 dai4 tou2 kui1 lo5."),
    DemoSentence("过马路看车，莫玩手机嘞。", "guo4 ma3 lu4 kan4 che1, mo4 wan2 shou3 ji1 lei5."),
    DemoSentence("公交车等半天都冇来呢。", "gong1 jiao1 che1 deng3 ban4 tian1 dou1 mao3 lai2 ne5."),
    DemoSentence("橘子洲大桥晚上好漂亮哒。", "ju2 zi5 zhou1 da4 qiao2 wan3 shang5 hao3 piao4 liang5 da5."),
    DemoSentence("你开慢点，前面有警察噻。", "ni3 kai1 man4 dian3, qian2 mian4 you3 jing3 cha2 sai5."),
    # school
    DemoSentence("明天考试，你复习哒冇？", "ming2 tian1 kao3 shi4, ni3 fu4 xi2 da5 mao3?"),
    DemoSentence("老师讲的我都听懂哒。", "lao3 shi1 jiang3 de5 wo3 dou1 ting1 dong3 da5."),
    DemoSentence("作业写完哒再去玩啰。", "zuo4 ye4 xie3 wan2 da5 zai4 qu4 wan2 luo5."),
    DemoSentence("放学哒，一起回去噻。", "fang4 xue2 da5, yi4 qi3 hui2 qu4 sai5."),
    DemoSentence("这道题目好难咧，不会做。", "zhe4 dao4 ti2 mu5 hao3 nan2 lie5, bu2 hui4 zuo4."),
    DemoSentence("我们班上考哒第一名！", "wo3 men5 ban1 shang4 kao3 da5 di4 yi1 ming2!"),
    DemoSentence("上课莫讲小话咯。", "shang4 ke4 mo4 jiang3 xiao3 hua4 lo5."),
    DemoSentence("伢唧读书蛮霸得蛮的。", "ya2 ji1 du2 shu1 man2 ba4 de2 man2 de5."),
    # everyday talk
    DemoSentence("你莫在这里乱策哒！", "ni3 mo4 zai4 zhe4 li3 luan4 ce4 da5!"),
    DemoSentence("么子情况，你讲清楚噻。", "mo2 zi5 qing2 kuang4, ni3 jiang3 qing1 chu5 sai5."),
    DemoSentence("要得要得，就这么搞啰。", "yao4 de2 yao4 de2, jiu4 zhe4 me5 gao3 luo5."),
    DemoSentence("冇得事，莫担心咯。", "mao3 de2 shi4, mo4 dan1 xin1 lo5."),
    DemoSentence("他讲的话你信不信呢？", "ta1 jiang3 de5 hua4 ni3 xin4 bu2 xin4 ne5?"),
    DemoSentence("周末一起去岳麓山噻！", "zhou1 mo4 yi4 qi3 qu4 yue4 lu4 shan1 sai5!"),
    DemoSentence("这个手机冇得电哒。", "zhe4 ge5 shou3 ji1 mao3 de2 dian4 da5."),
)

DEMO_SENTENCES: tuple[str, ...] = tuple(line.text for line in DEMO_LINES)
